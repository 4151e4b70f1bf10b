"""User management services shared by the admin UI and the `flask user` commands."""
