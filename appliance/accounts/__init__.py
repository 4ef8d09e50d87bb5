"""People and their rights: users, sessions, API keys, workspaces, the authorisation policy and the audit log."""
