"""Admin pages (stub: filled in by the admin work)."""

from __future__ import annotations

from flask import redirect, url_for
from werkzeug.wrappers import Response

from cms.admin import bp
from cms.auth.access import admin_required


@bp.route("/")
@admin_required
def index() -> Response:
    return redirect(url_for("admin.users"))


@bp.route("/users")
@admin_required
def users() -> str:
    return "users"


@bp.route("/agencies")
@admin_required
def agencies() -> str:
    return "agencies"


@bp.route("/audit")
@admin_required
def audit() -> str:
    return "audit"
