"""The admin blueprint, its entry point, and helpers shared by the admin pages."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from cms.auth.access import admin_required
from cms.errors import DomainError

bp = Blueprint("admin", __name__)


@bp.route("/")
@admin_required
def index() -> Response:
    return redirect(url_for("admin.users"))


def show_field_errors(form: FlaskForm, error: DomainError) -> None:
    """Attach a service error's field messages to the matching form fields."""
    fields = error.details.get("fields") or {}
    for name, messages in fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, *(m for m in messages if m not in field.errors)]


def page_number() -> int:
    """The `page` query argument (1 when missing or not a number)."""
    return request.args.get("page", 1, type=int) or 1
