"""Booking pages: new and edit forms, the booking page, and its status buttons."""

from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from cms.app_state import current_actor
from cms.bookings import bp, service
from cms.bookings.forms import PAX_TYPE_LABELS, BookingForm, EditBookingForm, NewBookingForm, StatusForm
from cms.bookings.rules import ACTION_LABELS, ALLOWED_TRANSITIONS
from cms.clients.service import get_client
from cms.errors import Conflict, ValidationFailed, wants_json
from cms.extensions import db
from cms.models import Booking, BookingStatus, Cabin

FORM_TEMPLATE = "bookings/form.html"


@bp.context_processor
def _booking_helpers() -> dict[str, Any]:
    return {
        "next_statuses": lambda booking: ALLOWED_TRANSITIONS[BookingStatus(booking.status)],
        "forward_status": _forward_status,
        "action_labels": ACTION_LABELS,
        "cabin_label": lambda code: Cabin(code).label,
        "pax_type_label": lambda code: PAX_TYPE_LABELS.get(code, code),
        "money": lambda amount: f"{amount:,.2f}",
    }


@bp.route("/clients/<id:client_id>/bookings/new", methods=["GET", "POST"])
@login_required
def new_booking(client_id: int) -> Response | str | tuple[str, int]:
    actor = current_actor()
    client = get_client(db.session, actor.agency_id, client_id)
    form = NewBookingForm()
    if request.method == "GET":
        # The client the booking is for is usually its first passenger.
        first = form.passengers.entries[0].form
        first.first_name.data, first.last_name.data = client.first_name, client.last_name
        return render_template(FORM_TEMPLATE, form=form, client=client, booking=None)
    if form.validate():
        try:
            booking = service.create_booking(
                db.session, actor, client.id, form.to_data(), status=form.status.data
            )
        except ValidationFailed as error:
            form.apply_problems(error.fields)
        else:
            flash(f"Booking {booking.record_locator} created.", "success")
            return redirect(url_for("bookings.view_booking", booking_id=booking.id), code=303)
    return _rejected(form, 422, client=client, booking=None)


@bp.route("/bookings/<id:booking_id>")
@login_required
def view_booking(booking_id: int) -> str:
    booking = service.get_booking(db.session, current_actor().agency_id, booking_id)
    return render_template("bookings/view.html", booking=booking, client=booking.client)


@bp.route("/bookings/<id:booking_id>/edit", methods=["GET", "POST"])
@login_required
def edit_booking(booking_id: int) -> Response | str | tuple[str, int]:
    actor = current_actor()
    booking = service.get_booking(db.session, actor.agency_id, booking_id)
    client = booking.client
    if request.method == "GET":
        form = EditBookingForm.for_booking(booking)
        return render_template(FORM_TEMPLATE, form=form, client=client, booking=booking)
    form = EditBookingForm()
    if form.validate():
        try:
            service.update_booking(
                db.session, actor, booking.id, form.to_data(), expected_version=form.version.data
            )
        except ValidationFailed as error:
            form.apply_problems(error.fields)
        except Conflict as error:
            if wants_json():
                raise
            form.form_errors.append(error.message)
            return _rejected(form, 409, client=client, booking=booking, stale=True)
        else:
            flash(f"Booking {booking.record_locator} saved.", "success")
            return redirect(url_for("bookings.view_booking", booking_id=booking.id), code=303)
    return _rejected(form, 422, client=client, booking=booking)


@bp.route("/bookings/<id:booking_id>/status", methods=["POST"])
@login_required
def change_status(booking_id: int) -> Response:
    form = StatusForm()
    booking = service.change_status(
        db.session, current_actor(), booking_id, form.status.data or "", form.version.data
    )
    if wants_json():
        return jsonify(booking=_booking_json(booking))
    flash(f"Booking {booking.record_locator} is now {booking.status}.", "success")
    return redirect(url_for("bookings.view_booking", booking_id=booking.id), code=303)


def _forward_status(booking: Booking) -> BookingStatus | None:
    """The furthest step forward the booking can take (the highlighted button), if any."""
    ahead = [s for s in ALLOWED_TRANSITIONS[BookingStatus(booking.status)] if s is not BookingStatus.CANCELLED]
    return ahead[-1] if ahead else None


def _rejected(form: BookingForm, status: int, **context: Any) -> tuple[str, int]:
    """Re-render the form with its errors (HTML), or raise ValidationFailed for JSON clients."""
    if wants_json():
        raise ValidationFailed("The booking was not saved: please check the fields.", form.field_errors())
    return render_template(FORM_TEMPLATE, form=form, **context), status


def _booking_json(booking: Booking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "record_locator": booking.record_locator,
        "status": booking.status,
        "version": booking.version,
    }
