"""Use cases that span domains: the worker that runs jobs end to end, privacy (account deletion, export, retention)."""
