"""The agent's home: dashboard, client search, client records and their timeline."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("clients", __name__)

from cms.clients import views  # noqa: E402,F401
