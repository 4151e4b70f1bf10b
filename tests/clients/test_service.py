"""Client service on SQLite and PostgreSQL: create, edit with locking, notes, tenancy, audit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.clients import service
from cms.clients.rules import ClientInput
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.models import Activity, AuditEvent, Client
from tests import factories
from tests.clients.conftest import World

ZOE = ClientInput(
    first_name="Zoë",
    last_name="Quinn",
    email="zoe@example.com",
    phone="+44 20 7946 0000",
    seat="aisle",
    meal="vgml",
)


def _counts(session: Session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(m)) or 0 for m in (Client, AuditEvent, Activity)
    )


def _state(session: Session, client_id: int) -> dict[str, Any]:
    session.expire_all()
    client = session.get(Client, client_id)
    assert client is not None
    return {**service.profile_of(client), "version": client.version}


def test_create_writes_client_audit_and_timeline(world: World) -> None:
    client = service.create_client(world.session, world.alice, ZOE)
    world.session.expire_all()

    stored = service.get_client(world.session, world.alpha.id, client.id)
    assert (stored.agency_id, stored.created_by_id, stored.full_name) == (
        world.alpha.id, world.alice.user_id, "Zoë Quinn"
    )
    assert stored.preferences == {"seat": "aisle", "meal": "VGML"}  # empty ones omitted
    assert stored.last_first_key == "quinn zoe" and stored.phone_key == "442079460000"
    event = world.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.target_id, event.target_label, event.actor_name) == (
        "client.create", str(client.id), "Zoë Quinn", "alice.agent"
    )
    assert event.after["email"] == "zoe@example.com" and event.before is None
    activity = world.session.scalars(select(Activity)).one()
    assert (activity.kind, activity.body, activity.user_id) == ("system", "Client record created", world.alice.user_id)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"first_name": ""}, "first_name"),
        ({"last_name": "x" * 81}, "last_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@" + "b" * 250 + ".com"}, "email"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "call me 123456"}, "phone"),
        ({"seat": "lap"}, "seat"),
        ({"meal": "VEGETARIAN"}, "meal"),
        ({"meal": "VG-ML"}, "meal"),
        ({"frequent_flyer": "x" * 41}, "frequent_flyer"),
        ({"assistance": "x" * 201}, "assistance"),
        ({"notes": "x" * 5001}, "notes"),
    ],
)
def test_invalid_input_is_refused_and_nothing_written(world: World, change: dict[str, str], field: str) -> None:
    data = replace(ZOE, **change)
    with pytest.raises(ValidationFailed) as raised:
        service.create_client(world.session, world.alice, data)
    assert list(raised.value.fields) == [field]
    world.session.rollback()
    assert _counts(world.session) == (0, 0, 0)


def test_update_records_only_changed_fields(world: World) -> None:
    client = service.create_client(world.session, world.alice, ZOE)
    edited = replace(ZOE, email="zoe@new.example", phone="+33 1 42 68 53 00", meal="")

    _, changed = service.update_client(world.session, world.alice, client.id, edited, expected_version=1)

    assert changed == ["email", "phone", "preferences"]
    state = _state(world.session, client.id)
    assert state["email"] == "zoe@new.example" and state["version"] == 2
    assert state["preferences"] == {"seat": "aisle"}
    event = world.session.scalars(select(AuditEvent).where(AuditEvent.action == "client.update")).one()
    assert event.before == {"email": "zoe@example.com", "phone": "+44 20 7946 0000",
                            "preferences": {"seat": "aisle", "meal": "VGML"}}
    assert event.after == {"email": "zoe@new.example", "phone": "+33 1 42 68 53 00",
                           "preferences": {"seat": "aisle"}}
    bodies = world.session.scalars(select(Activity.body).order_by(Activity.id)).all()
    assert bodies == ["Client record created", "Profile updated: email, phone, preferences"]


def test_update_keeps_preferences_the_form_does_not_manage(world: World) -> None:
    client = service.create_client(world.session, world.alice, ZOE)
    client.preferences = {**client.preferences, "home_airport": "LHR"}
    world.session.commit()

    service.update_client(world.session, world.alice, client.id, replace(ZOE, meal="KSML"), 2)

    assert _state(world.session, client.id)["preferences"] == {
        "seat": "aisle", "meal": "KSML", "home_airport": "LHR"}


def test_update_without_changes_writes_nothing(world: World) -> None:
    client = service.create_client(world.session, world.alice, ZOE)
    before = _counts(world.session)
    _, changed = service.update_client(world.session, world.alice, client.id, ZOE, expected_version=1)
    assert changed == [] and _counts(world.session) == before
    assert _state(world.session, client.id)["version"] == 1


def test_stale_version_is_a_conflict_and_changes_nothing(world: World) -> None:
    client = service.create_client(world.session, world.alice, ZOE)
    service.update_client(world.session, world.ada, client.id, replace(ZOE, notes="VIP"), 1)
    before, counts = _state(world.session, client.id), _counts(world.session)

    late = replace(ZOE, email="late@example.com")
    with pytest.raises(Conflict) as raised:
        service.update_client(world.session, world.alice, client.id, late, expected_version=1)

    assert "Someone else changed this client" in raised.value.message
    assert _state(world.session, client.id) == before and before["version"] == 2
    assert _counts(world.session) == counts


def test_invalid_edit_changes_nothing(world: World) -> None:
    client = service.create_client(world.session, world.alice, ZOE)
    before, counts = _state(world.session, client.id), _counts(world.session)
    with pytest.raises(ValidationFailed):
        service.update_client(world.session, world.alice, client.id,
                              replace(ZOE, email="broken@"), 1)
    world.session.rollback()
    assert _state(world.session, client.id) == before and _counts(world.session) == counts


def test_notes_are_added_to_the_timeline(world: World) -> None:
    client = factories.make_client(world.session, world.alpha)
    note = service.add_note(world.session, world.alice, client.id, "  Prefers morning flights.\n")
    assert (note.kind, note.body, note.user_id, note.agency_id) == (
        "note", "Prefers morning flights.", world.alice.user_id, world.alpha.id
    )
    for body in ("", "   \n ", "x" * 5001):
        with pytest.raises(ValidationFailed) as raised:
            service.add_note(world.session, world.alice, client.id, body)
        assert list(raised.value.fields) == ["body"]
    world.session.rollback()
    assert world.session.scalar(select(func.count()).select_from(Activity)) == 1


def test_other_agency_clients_are_not_found_and_untouched(world: World) -> None:
    client = service.create_client(world.session, world.alice, ZOE)
    before, counts = _state(world.session, client.id), _counts(world.session)

    with pytest.raises(NotFound):
        service.get_client(world.session, world.beta.id, client.id)
    with pytest.raises(NotFound):
        service.update_client(world.session, world.bob, client.id, ClientInput("Evil", "Edit"), 1)
    with pytest.raises(NotFound):
        service.add_note(world.session, world.bob, client.id, "hello")
    with pytest.raises(NotFound):
        service.get_client(world.session, world.alpha.id, 999_999)

    world.session.rollback()
    assert _state(world.session, client.id) == before and _counts(world.session) == counts
