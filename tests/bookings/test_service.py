"""Booking service on SQLite and PostgreSQL: create, update, status changes, tenancy, locking."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.audit import Actor
from cms.bookings import service
from cms.bookings.rules import PassengerInput
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.extensions import db
from cms.models import Activity, Agency, AuditEvent, Booking, Client, Passenger, Segment, User
from tests import factories
from tests.bookings.payloads import DAY, START, booking_input
from tests.conftest import Personas, create_personas

LOCATOR = re.compile(r"^[A-HJ-NP-Z2-9]{6}$")


@pytest.fixture
def world(any_db_app: Flask) -> Iterator[dict[str, Any]]:
    """An app context with Alpha's agent and client, and Beta's agent and client."""
    personas: Personas = create_personas(any_db_app)
    with any_db_app.app_context():
        session = db.session
        alice = session.scalar(select(User).where(User.username == personas.agent_a))
        bob = session.scalar(select(User).where(User.username == personas.agent_b))
        alpha_client = factories.make_client(session, session.get(Agency, personas.agency_a_id))
        beta_client = factories.make_client(session, session.get(Agency, personas.agency_b_id))
        yield {
            "session": session,
            "alice": Actor.for_user(alice),
            "bob": Actor.for_user(bob),
            "alpha_client": alpha_client.id,
            "beta_client": beta_client.id,
        }


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _counts(session: Session) -> tuple[int, ...]:
    return tuple(_count(session, m) for m in (Booking, Passenger, Segment, AuditEvent, Activity))


def test_create_stores_rows_in_order_with_locator_agent_audit_and_activity(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(
        session, alice, world["alpha_client"], booking_input(passengers=2, segments=3), status="confirmed"
    )
    session.expire_all()
    stored = service.get_booking(session, alice.agency_id, booking.id)

    assert LOCATOR.match(stored.record_locator)
    assert stored.status == "confirmed" and stored.agent_id == alice.user_id
    assert [p.first_name for p in stored.passengers] == ["Pax0", "Pax1"]
    assert [(s.position, s.origin, s.destination) for s in stored.segments] == [
        (1, "LHR", "JFK"), (2, "JFK", "LHR"), (3, "LHR", "JFK")
    ]
    assert stored.total_fare == Decimal("300.00")

    event = session.scalar(select(AuditEvent))
    assert (event.action, event.target_type, event.target_id, event.target_label) == (
        "booking.create", "booking", str(booking.id), stored.record_locator
    )
    assert event.after["segments"][0].startswith("BA100 LHR-JFK")
    activity = session.scalar(select(Activity))
    assert activity.kind == "booking" and activity.client_id == world["alpha_client"]
    first = START
    assert activity.body == (
        f"Booking {stored.record_locator} created: LHR→JFK→LHR→JFK {first.day} {first:%b}, 2 passengers"
    )


def test_create_for_another_agencys_client_is_not_found_and_writes_nothing(world: dict[str, Any]) -> None:
    session = world["session"]
    with pytest.raises(NotFound):
        service.create_booking(session, world["bob"], world["alpha_client"], booking_input())
    assert _counts(session) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: replace(d, passengers=[]), "passengers"),
        (lambda d: replace(d, segments=[]), "segments"),
        (lambda d: replace(d, passengers=[PassengerInput("A", "B")] * 10), "passengers"),
        (lambda d: replace(d, segments=booking_input(segments=17).segments), "segments"),
        (lambda d: replace(d, currency="eu"), "currency"),
        (lambda d: replace(d, segments=[replace(d.segments[0], destination="LHR")]), "segments-0-destination"),
        (lambda d: replace(d, segments=[replace(d.segments[0], carrier="B")]), "segments-0-carrier"),
        (lambda d: replace(d, segments=[replace(d.segments[0], fare=Decimal("-1"))]), "segments-0-fare"),
        (
            lambda d: replace(d, segments=[d.segments[0], replace(d.segments[1], departure_date=START - DAY)]),
            "segments-1-departure_date",
        ),
    ],
)
def test_invalid_booking_is_rejected_with_field_keys_and_nothing_written(
    world: dict[str, Any], change: Any, key: str
) -> None:
    session = world["session"]
    with pytest.raises(ValidationFailed) as raised:
        service.create_booking(session, world["alice"], world["alpha_client"], change(booking_input()))
    assert key in raised.value.fields
    assert _counts(session) == (0, 0, 0, 0, 0)


def test_new_booking_cannot_start_ticketed(world: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as raised:
        service.create_booking(
            world["session"], world["alice"], world["alpha_client"], booking_input(), status="ticketed"
        )
    assert "status" in raised.value.fields


def test_locator_collision_draws_another(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    first = service.create_booking(
        session, alice, world["alpha_client"], booking_input(), new_locator=lambda: "AAAAAA"
    )
    draws = iter(["AAAAAA", "AAAAAA", "BBBBBB"])
    second = service.create_booking(
        session, alice, world["alpha_client"], booking_input(), new_locator=lambda: next(draws)
    )
    assert (first.record_locator, second.record_locator) == ("AAAAAA", "BBBBBB")
    assert _count(session, Booking) == 2 and _count(session, AuditEvent) == 2


def test_update_replaces_rows_bumps_version_and_records_changes(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input(segments=2))
    data = booking_input(passengers=1, segments=1, notes="Window seats")

    updated = service.update_booking(session, alice, booking.id, data, expected_version=1)

    session.expire_all()
    stored = service.get_booking(session, alice.agency_id, updated.id)
    assert stored.version == 2 and stored.notes == "Window seats"
    assert len(stored.passengers) == 1 and len(stored.segments) == 1
    assert _count(session, Passenger) == 1 and _count(session, Segment) == 1
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "booking.update")).one()
    assert set(event.after) == {"notes", "passengers", "segments"}
    assert event.before["notes"] == ""
    bodies = session.scalars(select(Activity.body).order_by(Activity.id)).all()
    assert bodies[-1].startswith(f"Booking {stored.record_locator} updated: LHR→JFK")


def test_update_with_identical_content_writes_nothing(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input())
    before = _counts(session)
    service.update_booking(session, alice, booking.id, booking_input(), expected_version=1)
    session.expire_all()
    assert _counts(session) == before
    assert session.get(Booking, booking.id).version == 1


def test_update_with_stale_version_is_a_conflict_and_changes_nothing(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input())
    service.update_booking(session, alice, booking.id, booking_input(notes="first"), expected_version=1)
    before = _counts(session)

    with pytest.raises(Conflict):
        service.update_booking(session, alice, booking.id, booking_input(notes="second"), expected_version=1)
    session.expire_all()
    assert session.get(Booking, booking.id).notes == "first"
    assert _counts(session) == before


def test_edit_committed_elsewhere_after_reading_is_a_conflict(world: dict[str, Any]) -> None:
    """The version check also holds when another writer commits between our read and our write."""
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input())
    service.get_booking(session, alice.agency_id, booking.id)  # loaded at version 1 in this session

    with Session(db.engine) as other:
        service.update_booking(other, alice, booking.id, booking_input(notes="theirs"), expected_version=1)

    with pytest.raises(Conflict):
        service.update_booking(session, alice, booking.id, booking_input(notes="mine"), expected_version=1)
    session.expire_all()
    stored = session.get(Booking, booking.id)
    assert (stored.notes, stored.version) == ("theirs", 2)


def test_other_agency_cannot_read_update_or_change_status(world: dict[str, Any]) -> None:
    session, alice, bob = world["session"], world["alice"], world["bob"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input())
    before = _counts(session)
    with pytest.raises(NotFound):
        service.get_booking(session, bob.agency_id, booking.id)
    with pytest.raises(NotFound):
        service.update_booking(session, bob, booking.id, booking_input(notes="x"), expected_version=1)
    with pytest.raises(NotFound):
        service.change_status(session, bob, booking.id, "cancel")
    session.expire_all()
    assert _counts(session) == before
    assert session.get(Booking, booking.id).status == "quoted"


def test_status_follows_the_lifecycle_with_audit_and_timeline(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input())
    for action, expected in [("hold", "held"), ("confirmed", "confirmed"), ("ticket", "ticketed"), ("cancel", "cancelled")]:
        assert service.change_status(session, alice, booking.id, action).status == expected

    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "booking.status").order_by(AuditEvent.id)
    ).all()
    assert [(e.before["status"], e.after["status"]) for e in events] == [
        ("quoted", "held"), ("held", "confirmed"), ("confirmed", "ticketed"), ("ticketed", "cancelled")
    ]
    last = session.scalars(select(Activity.body).order_by(Activity.id.desc())).first()
    assert last == f"Booking {booking.record_locator} cancelled"


@pytest.mark.parametrize(
    ("start", "action"),
    [("cancelled", "confirm"), ("cancelled", "cancel"), ("quoted", "ticket"), ("ticketed", "hold"), ("held", "quoted")],
)
def test_illegal_transition_is_a_conflict_and_changes_nothing(
    world: dict[str, Any], start: str, action: str
) -> None:
    session, alice = world["session"], world["alice"]
    client = session.get(Client, world["alpha_client"])
    booking = factories.make_booking(session, client, status=start)
    with pytest.raises(Conflict) as raised:
        service.change_status(session, alice, booking.id, action)
    assert f"is {start}" in raised.value.message
    session.expire_all()
    assert session.get(Booking, booking.id).status == start
    assert _count(session, AuditEvent) == 0 and _count(session, Activity) == 0


def test_unknown_status_is_invalid(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input())
    with pytest.raises(ValidationFailed):
        service.change_status(session, alice, booking.id, "teleport")


def test_status_change_with_stale_version_is_a_conflict(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    booking = service.create_booking(session, alice, world["alpha_client"], booking_input())
    service.update_booking(session, alice, booking.id, booking_input(notes="changed"), expected_version=1)
    with pytest.raises(Conflict):
        service.change_status(session, alice, booking.id, "confirm", expected_version=1)
    session.expire_all()
    assert session.get(Booking, booking.id).status == "quoted"


def test_dates_may_repeat_but_not_go_back(world: dict[str, Any]) -> None:
    session, alice = world["session"], world["alice"]
    data = booking_input(segments=2)
    same_day = replace(data, segments=[data.segments[0], replace(data.segments[1], departure_date=START)])
    booking = service.create_booking(session, alice, world["alpha_client"], same_day)
    assert [s.departure_date for s in booking.segments] == [START, START]
    assert START + timedelta(days=0) == booking.first_departure
