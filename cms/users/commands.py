"""`flask user ...` (stub: filled in by the admin work)."""

from __future__ import annotations

import click


@click.group("user")
def user_group() -> None:
    """Manage users."""
