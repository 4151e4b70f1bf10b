"""Agent pages: the dashboard, client search, the client page and its forms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import (Blueprint, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_login import login_required
from werkzeug.wrappers import Response

from cms.app_state import current_actor
from cms.clients import pages, service
from cms.clients.forms import ClientForm, EditClientForm, NoteForm
from cms.clients.rules import SEAT_CHOICES
from cms.clients.search import SearchRejected, search_clients
from cms.errors import Conflict, ValidationFailed, wants_json
from cms.extensions import db
from cms.models import utcnow

bp = Blueprint("clients", __name__)

FORM_TEMPLATE = "clients/form.html"
SEAT_LABELS = dict(SEAT_CHOICES)


@bp.app_context_processor
def _client_helpers() -> dict[str, Any]:
    # App-wide: other areas' templates link to endpoints that may not be registered yet.
    return {
        "has_endpoint": lambda name: name in current_app.view_functions,
        "seat_label": lambda value: SEAT_LABELS.get(value, value),
        "money": lambda amount: f"{amount:,.2f}",
        "viewed_label": _viewed_label,
    }


def _viewed_label(moment: datetime) -> str:
    """"14:05 UTC" for today, "24 Nov" for earlier this year, "24 Nov 2025" before that."""
    now = utcnow()
    if moment.date() == now.date():
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%d %b" if moment.year == now.year else "%d %b %Y")


@bp.route("/")
@login_required
def dashboard() -> str:
    data = pages.dashboard(db.session, current_actor(), utcnow().date())
    return render_template("clients/dashboard.html", data=data)


@bp.route("/clients")
@login_required
def search() -> str | tuple[str, int]:
    query = request.args.get("q", "")
    page_number = request.args.get("page", 1, type=int)
    sort = request.args.get("sort") or "name"
    raw_days = request.args.get("departing", "").strip()
    try:
        departing = int(raw_days) if raw_days else None
    except ValueError:
        departing = -1  # refused below with the message
    try:
        results = search_clients(
            db.session, current_actor().agency_id, query, page_number, utcnow().date(),
            sort=sort, departing=departing,
        )
    except SearchRejected as error:
        if wants_json():
            raise
        return render_template("clients/search.html", results=None, query=query, error=error.message), 400
    return render_template("clients/search.html", results=results, query=query)


@bp.route("/clients/new", methods=["GET", "POST"])
@login_required
def new_client() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        form = ClientForm.prefilled(request.args.get("q", ""))
        return render_template(FORM_TEMPLATE, form=form, client=None)
    form = ClientForm()
    if form.validate():
        try:
            client = service.create_client(db.session, current_actor(), form.to_input())
        except ValidationFailed as error:
            form.apply_problems(error.fields)
        else:
            flash(f"{client.full_name} was added.", "success")
            return redirect(url_for("clients.view_client", client_id=client.id), code=303)
    return _rejected(form, 422, client=None)


@bp.route("/clients/<id:client_id>")
@login_required
def view_client(client_id: int) -> str:
    page = pages.open_client(db.session, current_actor(), client_id)
    pending = session.pop("undo_note", None)  # offered once, right after adding
    undo = pending[1] if isinstance(pending, list) and len(pending) == 2 and pending[0] == client_id else None
    return render_template("clients/view.html", page=page, note_form=NoteForm(formdata=None),
                           undo_note=undo)


@bp.route("/clients/<id:client_id>/edit", methods=["GET", "POST"])
@login_required
def edit_client(client_id: int) -> Response | str | tuple[str, int]:
    actor = current_actor()
    client = service.get_client(db.session, actor.agency_id, client_id)
    if request.method == "GET":
        return render_template(FORM_TEMPLATE, form=EditClientForm.for_client(client), client=client)
    form = EditClientForm()
    if form.validate():
        try:
            _, changed = service.update_client(
                db.session, actor, client.id, form.to_input(), form.version.data
            )
        except ValidationFailed as error:
            form.apply_problems(error.fields)
        except Conflict as error:
            if wants_json():
                raise
            form.form_errors.append(error.message)
            return _rejected(form, 409, client=client, stale=True)
        else:
            flash("Saved." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect(url_for("clients.view_client", client_id=client.id), code=303)
    return _rejected(form, 422, client=client)


@bp.route("/clients/<id:client_id>/notes/<id:note_id>/undo", methods=["POST"])
@login_required
def undo_note(client_id: int, note_id: int) -> Response:
    service.undo_note(db.session, current_actor(), client_id, note_id, utcnow())
    flash("Note removed.", "success")
    return redirect(url_for("clients.view_client", client_id=client_id, _anchor="timeline"), code=303)


@bp.route("/clients/<id:client_id>/notes", methods=["POST"])
@login_required
def add_note(client_id: int) -> Response | tuple[str, int]:
    actor = current_actor()
    form = NoteForm()
    if form.validate():
        note = service.add_note(db.session, actor, client_id, form.body.data or "")
        flash("Note added.", "success")
        session["undo_note"] = [client_id, note.id]  # the client page offers "Undo" once
        return redirect(url_for("clients.view_client", client_id=client_id, _anchor="timeline"), code=303)
    # Unknown or foreign client: 404 before any form error is shown.
    page = pages.client_page(db.session, actor.agency_id, client_id)
    if wants_json():
        raise ValidationFailed("The note was not added.", {"body": list(form.body.errors)})
    return render_template("clients/view.html", page=page, note_form=form), 422


def _rejected(form: ClientForm, status: int, **context: Any) -> tuple[str, int]:
    """Re-render the form with its errors (HTML), or raise ValidationFailed for JSON clients."""
    if wants_json():
        raise ValidationFailed(service.INVALID_MESSAGE, form.field_errors())
    return render_template(FORM_TEMPLATE, form=form, **context), status
