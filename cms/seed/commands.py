"""`flask seed` (stub: filled in by the seed work)."""

from __future__ import annotations

import click


@click.command("seed")
def seed_command() -> None:
    """Seed demo data."""
