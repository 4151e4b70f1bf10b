"""Flask CLI commands: `seed` and `user` (filled in by the CLI work)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the commands."""
