"""Flask CLI commands: `flask --app cms seed` and `flask --app cms user ...`."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the commands."""
    from cms.auth.commands import token_group
    from cms.plugins.commands import plugins_group
    from cms.seed.commands import seed_command
    from cms.users.commands import user_group

    app.cli.add_command(seed_command)
    app.cli.add_command(user_group)
    app.cli.add_command(plugins_group)
    app.cli.add_command(token_group)
