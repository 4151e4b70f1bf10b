"""Login, logout and the session loader."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)

from cms.auth import views  # noqa: E402,F401  (registers routes on bp)
