"""Admin pages for agencies: list with counts, create, rename, activate and deactivate."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from cms.admin.forms import AgencyForm
from cms.admin.views import bp, show_field_errors
from cms.app_state import current_actor
from cms.auth.access import admin_required
from cms.errors import Conflict, ValidationFailed
from cms.extensions import db
from cms.users.agencies import (
    agency_overview,
    create_agency,
    list_agencies,
    rename_agency,
    set_agency_active,
)

View = Response | str | tuple[str, int]


def _render_list(form: AgencyForm, status: int = 200) -> View:
    rows = list_agencies(db.session)
    return render_template("admin/agencies.html", rows=rows, form=form), status


@bp.route("/agencies", methods=["GET", "POST"])
@admin_required
def agencies() -> View:
    form = AgencyForm()
    if request.method == "GET":
        return _render_list(AgencyForm(formdata=None))
    if not form.validate_on_submit():
        return _render_list(form, 422)
    try:
        agency = create_agency(db.session, current_actor(), form.name.data or "")
    except (ValidationFailed, Conflict) as error:
        show_field_errors(form, error)
        return _render_list(form, error.status)
    flash(f"Agency {agency.name} created.", "success")
    return redirect(url_for("admin.agency_detail", agency_id=agency.id), code=303)


def _render_detail(agency_id: int, form: AgencyForm, status: int = 200) -> View:
    row = agency_overview(db.session, agency_id)
    if form.name.data is None:
        form.name.data = row.agency.name
    return render_template("admin/agency_detail.html", row=row, agency=row.agency, form=form), status


@bp.route("/agencies/<id:agency_id>")
@admin_required
def agency_detail(agency_id: int) -> View:
    return _render_detail(agency_id, AgencyForm(formdata=None))


@bp.route("/agencies/<id:agency_id>/rename", methods=["POST"])
@admin_required
def agency_rename(agency_id: int) -> View:
    form = AgencyForm()
    if not form.validate_on_submit():
        return _render_detail(agency_id, form, 422)
    try:
        agency = rename_agency(db.session, current_actor(), agency_id, form.name.data or "")
    except (ValidationFailed, Conflict) as error:
        show_field_errors(form, error)
        return _render_detail(agency_id, form, error.status)
    flash(f"Agency renamed to {agency.name}.", "success")
    return redirect(url_for("admin.agency_detail", agency_id=agency_id), code=303)


@bp.route("/agencies/<id:agency_id>/deactivate", methods=["POST"])
@admin_required
def agency_deactivate(agency_id: int) -> Response:
    revoked = set_agency_active(db.session, current_actor(), agency_id, False)
    flash(
        f"Agency deactivated: its users cannot log in; {revoked} session(s) ended.", "success"
    )
    return redirect(url_for("admin.agency_detail", agency_id=agency_id), code=303)


@bp.route("/agencies/<id:agency_id>/activate", methods=["POST"])
@admin_required
def agency_activate(agency_id: int) -> Response:
    set_agency_active(db.session, current_actor(), agency_id, True)
    flash("Agency activated: its active users can log in again.", "success")
    return redirect(url_for("admin.agency_detail", agency_id=agency_id), code=303)
