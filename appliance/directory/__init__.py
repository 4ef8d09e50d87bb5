"""Directory accounts: LDAP / Active Directory sign-in and groups mapped to roles and workspaces."""
