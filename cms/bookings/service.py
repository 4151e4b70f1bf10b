"""Booking operations: create, edit, change status and read, always scoped to the actor's agency.

Each change commits together with its audit event and a "booking" entry on the client's timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from cms.audit import Actor, changes, record_event
from cms.bookings.locators import generate_locator
from cms.bookings.rules import (
    ALLOWED_TRANSITIONS,
    INITIAL_STATUSES,
    BookingInput,
    booking_problems,
    parse_status,
)
from cms.clients.service import get_client
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.models import Activity, ActivityKind, Booking, BookingStatus, Passenger, Segment, utcnow

logger = logging.getLogger(__name__)

LOCATOR_ATTEMPTS = 8
INVALID_MESSAGE = "The booking was not saved: please check the marked fields."
STALE_MESSAGE = (
    "Someone else changed this booking while you were editing it. "
    "Reload it and apply your change again."
)


def get_booking(session: Session, agency_id: int | None, booking_id: int) -> Booking:
    """Return the agency's booking with its rows loaded; raises NotFound (also for other agencies)."""
    booking = session.scalar(
        select(Booking)
        .where(Booking.id == booking_id, Booking.agency_id == agency_id)
        .options(
            selectinload(Booking.passengers),
            selectinload(Booking.segments),
            selectinload(Booking.client),
        )
    )
    if booking is None:
        raise NotFound("This booking does not exist.")
    return booking


def create_booking(
    session: Session,
    actor: Actor,
    client_id: int,
    data: BookingInput,
    status: str = BookingStatus.QUOTED.value,
    new_locator: Callable[[], str] = generate_locator,
    commit: bool = True,
) -> Booking:
    """Create and commit a booking for the agency's client, with a fresh record locator.

    Raises NotFound (client not in the actor's agency) or ValidationFailed (nothing written).
    With `commit=False` the rows are only flushed: the caller's transaction decides (plugins).
    """
    client = get_client(session, actor.agency_id, client_id)
    problems = booking_problems(data)
    initial = parse_status(status)
    if initial is None or initial not in INITIAL_STATUSES:
        problems["status"] = ["A new booking is quoted, held or confirmed."]
    if problems or initial is None:
        raise ValidationFailed(INVALID_MESSAGE, problems)

    booking = Booking(
        agency_id=client.agency_id,
        client_id=client.id,
        agent_id=actor.user_id,
        status=initial.value,
        currency=data.currency,
        notes=data.notes,
    )
    booking.passengers, booking.segments = _rows(data)
    _insert_with_unique_locator(session, booking, new_locator)
    _record(session, actor, booking, "booking.create", after=booking_snapshot(booking))
    _add_activity(session, actor, booking, f"created: {trip_summary(booking)}")
    _finish(session, commit)
    logger.info("booking %s created for client %s", booking.record_locator, client.id)
    return booking


def update_booking(
    session: Session, actor: Actor, booking_id: int, data: BookingInput, expected_version: int,
    commit: bool = True,
) -> Booking:
    """Replace the booking's content and rows in one commit (status is changed by change_status).

    Raises NotFound, Conflict (the booking changed since `expected_version`) or ValidationFailed;
    on any error nothing is written. Saving identical content writes nothing.
    """
    booking = get_booking(session, actor.agency_id, booking_id)
    if booking.version != expected_version:
        raise Conflict(STALE_MESSAGE)
    problems = booking_problems(data)
    if problems:
        raise ValidationFailed(INVALID_MESSAGE, problems)

    before = booking_snapshot(booking)
    passengers, segments = _rows(data)
    after = _snapshot(booking.status, data.currency, data.notes, passengers, segments)
    if after == before:
        return booking

    booking.currency = data.currency
    booking.notes = data.notes
    booking.passengers = passengers
    booking.segments = segments
    # Replacing only child rows would not touch the bookings row; this bumps its version.
    booking.updated_at = utcnow()
    old, new = changes(before, after)
    _record(session, actor, booking, "booking.update", before=old, after=new)
    _add_activity(session, actor, booking, f"updated: {trip_summary(booking)}")
    _finish(session, commit)
    return booking


def change_status(
    session: Session,
    actor: Actor,
    booking_id: int,
    status: str,
    expected_version: int | None = None,
    commit: bool = True,
) -> Booking:
    """Move the booking to `status` (a verb like "cancel" or a status like "cancelled") and commit.

    Raises NotFound, ValidationFailed (unknown status) or Conflict (a transition the current
    status does not allow, or the booking changed since `expected_version`).
    """
    booking = get_booking(session, actor.agency_id, booking_id)
    target = parse_status(status)
    if target is None:
        raise ValidationFailed(
            f"Unknown status {status[:20]!r}.", {"status": ["Choose hold, confirm, ticket or cancel."]}
        )
    if expected_version is not None and booking.version != expected_version:
        raise Conflict(STALE_MESSAGE)
    current = BookingStatus(booking.status)
    if target not in ALLOWED_TRANSITIONS[current]:
        raise Conflict(
            f"Booking {booking.record_locator} is {current.value}; it cannot become {target.value}.",
            status=current.value,
        )

    booking.status = target.value
    booking.updated_at = utcnow()
    _record(
        session, actor, booking, "booking.status",
        before={"status": current.value}, after={"status": target.value},
    )
    _add_activity(session, actor, booking, target.value)
    _finish(session, commit)
    return booking


def booking_snapshot(booking: Booking) -> dict[str, Any]:
    """The booking's content as JSON-ready values, for the audit trail."""
    return _snapshot(
        booking.status, booking.currency, booking.notes, booking.passengers, booking.segments
    )


def _snapshot(
    status: str,
    currency: str,
    notes: str,
    passengers: Sequence[Passenger],
    segments: Sequence[Segment],
) -> dict[str, Any]:
    return {
        "status": status,
        "currency": currency,
        "notes": notes,
        "passengers": [f"{p.last_name.upper()}/{p.first_name} {p.pax_type}" for p in passengers],
        "segments": [
            f"{s.carrier}{s.flight_number} {s.origin}-{s.destination} "
            f"{s.departure_date.isoformat()} {s.cabin} {s.fare:.2f}"
            for s in segments
        ],
    }


def trip_summary(booking: Booking, passengers: int | None = None) -> str:
    """Return e.g. "LHR→JFK→LHR 12 Jan, 2 passengers" (connected flights share an airport).
    `passengers`: their number when already counted (else `booking.passengers` is loaded)."""
    route: list[str] = []
    for segment in booking.segments:
        if not route or route[-1] != segment.origin:
            if route:
                route.append("/")
            route.append(segment.origin)
        route.append(segment.destination)
    text = "→".join(route).replace("→/→", " / ")
    first = booking.segments[0].departure_date if booking.segments else None
    if first:
        text += f" {first.day} {first:%b}"
    count = len(booking.passengers) if passengers is None else passengers
    return f"{text}, {count} passenger{'' if count == 1 else 's'}"


def _rows(data: BookingInput) -> tuple[list[Passenger], list[Segment]]:
    """New passenger and segment rows for `data`, numbered in the order given."""
    passengers = [
        Passenger(
            position=position,
            first_name=pax.first_name.strip(),
            last_name=pax.last_name.strip(),
            pax_type=pax.pax_type,
        )
        for position, pax in enumerate(data.passengers, start=1)
    ]
    segments = [
        Segment(
            position=position,
            carrier=seg.carrier,
            flight_number=seg.flight_number,
            origin=seg.origin,
            destination=seg.destination,
            departure_date=seg.departure_date,
            cabin=seg.cabin,
            fare=seg.fare,
        )
        for position, seg in enumerate(data.segments, start=1)
    ]
    return passengers, segments


def _insert_with_unique_locator(
    session: Session, booking: Booking, new_locator: Callable[[], str]
) -> None:
    """Flush `booking` under a fresh locator, retrying in a savepoint when the locator is taken."""
    for _ in range(LOCATOR_ATTEMPTS):
        locator = new_locator()
        booking.record_locator = locator
        try:
            with session.begin_nested():
                session.add(booking)
        except IntegrityError:
            taken = session.scalar(select(Booking.id).where(Booking.record_locator == locator))
            if taken is None:
                raise  # some other constraint failed: not ours to retry
            logger.warning("record locator %s already taken; drawing another", locator)
            continue
        return
    raise RuntimeError(f"no free record locator after {LOCATOR_ATTEMPTS} attempts")


def _record(session: Session, actor: Actor, booking: Booking, action: str, **values: Any) -> None:
    record_event(
        session,
        actor,
        action,
        target_type="booking",
        target_id=booking.id,
        target_label=booking.record_locator,
        agency_id=booking.agency_id,
        **values,
    )


def _add_activity(session: Session, actor: Actor, booking: Booking, what: str) -> None:
    session.add(
        Activity(
            agency_id=booking.agency_id,
            client_id=booking.client_id,
            user_id=actor.user_id,
            kind=ActivityKind.BOOKING.value,
            body=f"Booking {booking.record_locator} {what}",
            data={
                "booking_id": booking.id,
                "record_locator": booking.record_locator,
                "status": booking.status,
            },
        )
    )


def _finish(session: Session, commit: bool) -> None:
    """Commit (a version clash becomes Conflict), or only flush for the caller's transaction."""
    if commit:
        _commit_or_conflict(session)
        return
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(STALE_MESSAGE) from None


def _commit_or_conflict(session: Session) -> None:
    """Commit; a concurrent change to the same booking (version mismatch) becomes a Conflict."""
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        raise Conflict(STALE_MESSAGE) from None
