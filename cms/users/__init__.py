"""User, agency and audit-log services shared by the admin UI and the `flask user` commands.

Flask-free: `service` (users), `agencies`, `audit_log` (queries and CSV export), `paging`;
`commands` holds the CLI.
"""
