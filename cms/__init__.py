"""The travel-agency CMS. `create_app` builds the Flask app (`flask --app cms`, Gunicorn).

The factory is imported lazily so that Flask-free subpackages (`cms.runtime`) import without
pulling in Flask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from cms.config import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the app; see `cms.app.create_app`."""
    from cms.app import create_app as build

    return build(settings, **overrides)
