"""Admin pages for users: list, create, detail, and the account actions."""

from __future__ import annotations

from datetime import timedelta

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from cms.admin.forms import NewUserForm, ResetPasswordForm, UserFilterForm, choices
from cms.admin.views import bp, page_number, show_field_errors
from cms.app_state import current_actor, state
from cms.auth.access import admin_required
from cms.errors import Conflict, ValidationFailed
from cms.extensions import db
from cms.ids import parse_id
from cms.users.agencies import agency_choices
from cms.users.service import (
    UserFilters,
    create_user,
    deactivate_user,
    force_logout,
    list_users,
    parse_role,
    reactivate_user,
    reset_password,
    user_overview,
)

ACTIVE_FILTER = {"active": True, "inactive": False}

View = Response | str | tuple[str, int]


@bp.route("/users")
@admin_required
def users() -> View:
    form = UserFilterForm(request.args)
    form.agency.choices = choices(agency_choices(db.session), blank="All agencies")
    if not form.validate():
        return render_template("admin/users.html", form=form, page=None, filter_args={}), 422
    filters = UserFilters(
        q=form.q.data or "",
        agency_id=form.agency.data,
        role=parse_role(form.role.data or ""),
        active=ACTIVE_FILTER.get(form.active.data or ""),
    )
    page = list_users(db.session, filters, page_number())
    filter_args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template("admin/users.html", form=form, page=page, filter_args=filter_args)


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user() -> View:
    form = NewUserForm()
    form.agency_id.choices = choices(agency_choices(db.session))
    agency = parse_id(request.args.get("agency"), "agency") if request.method == "GET" else None
    if agency:
        form.agency_id.data = agency
    if request.method == "GET":
        return render_template("admin/user_new.html", form=form)
    if not form.validate_on_submit():
        return render_template("admin/user_new.html", form=form), 422
    try:
        user = create_user(
            db.session,
            state().passwords,
            current_actor(),
            username=form.username.data or "",
            display_name=form.display_name.data or "",
            email=form.email.data,
            role=form.role.data or "",
            agency_id=form.agency_id.data,
            password=form.password.data or "",
        )
    except (ValidationFailed, Conflict) as error:
        show_field_errors(form, error)
        return render_template("admin/user_new.html", form=form, error=error.message), error.status
    flash(f"User {user.username} created.", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id), code=303)


def _render_detail(
    user_id: int,
    reset_form: ResetPasswordForm,
    status: int = 200,
    generated_password: str | None = None,
) -> View:
    idle = timedelta(minutes=state().settings.session_idle_minutes)
    overview = user_overview(db.session, user_id, idle)
    return render_template(
        "admin/user_detail.html",
        overview=overview,
        user=overview.user,
        reset_form=reset_form,
        generated_password=generated_password,
    ), status


@bp.route("/users/<id:user_id>")
@admin_required
def user_detail(user_id: int) -> View:
    return _render_detail(user_id, ResetPasswordForm(formdata=None))


@bp.route("/users/<id:user_id>/deactivate", methods=["POST"])
@admin_required
def user_deactivate(user_id: int) -> Response:
    revoked = deactivate_user(db.session, current_actor(), user_id)
    flash(f"Account deactivated; {_sessions(revoked)} ended.", "success")
    return redirect(url_for("admin.user_detail", user_id=user_id), code=303)


@bp.route("/users/<id:user_id>/reactivate", methods=["POST"])
@admin_required
def user_reactivate(user_id: int) -> Response:
    reactivate_user(db.session, current_actor(), user_id)
    flash("Account reactivated: this user can log in again.", "success")
    return redirect(url_for("admin.user_detail", user_id=user_id), code=303)


@bp.route("/users/<id:user_id>/password", methods=["POST"])
@admin_required
def user_password(user_id: int) -> View:
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return _render_detail(user_id, form, 422)
    try:
        generated = reset_password(
            db.session, state().passwords, current_actor(), user_id, form.password.data or None
        )
    except ValidationFailed as error:
        show_field_errors(form, error)
        return _render_detail(user_id, form, error.status)
    if generated:
        # Rendered straight into this (no-store) response: a flash would carry the password in
        # the signed but readable session cookie.
        return _render_detail(user_id, ResetPasswordForm(formdata=None), generated_password=generated)
    flash("Password changed; all of this user's sessions were ended.", "success")
    return redirect(url_for("admin.user_detail", user_id=user_id), code=303)


@bp.route("/users/<id:user_id>/logout", methods=["POST"])
@admin_required
def user_logout(user_id: int) -> Response:
    revoked = force_logout(db.session, current_actor(), user_id)
    flash(f"Logged out: {_sessions(revoked)} ended.", "success")
    return redirect(url_for("admin.user_detail", user_id=user_id), code=303)


def _sessions(count: int) -> str:
    return "1 session" if count == 1 else f"{count} sessions"
