"""The admin shell under /admin: users, agencies, audit log (flags, plugins, health come later)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__)

from cms.admin import agencies, audit, users, views  # noqa: E402,F401  (register routes on bp)
