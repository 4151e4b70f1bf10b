"""Agency services on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms.audit import Actor
from cms.auth.sessions import create_session, load_session_user
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.extensions import db
from cms.models import Agency, AuditEvent
from cms.users.agencies import (
    agency_overview,
    create_agency,
    list_agencies,
    rename_agency,
    set_agency_active,
)
from cms.users.service import get_user_by_username
from tests.conftest import create_personas
from tests.factories import make_client

IDLE = timedelta(hours=12)


@pytest.fixture
def world(any_db_app: Flask) -> Any:
    personas = create_personas(any_db_app)
    with any_db_app.app_context():
        admin = get_user_by_username(db.session, personas.admin)
        yield personas, Actor.for_user(admin, "203.0.113.9")


def _agencies() -> int:
    return db.session.scalar(select(func.count()).select_from(Agency)) or 0


def test_create_agency_trims_and_audits(world: Any) -> None:
    _, actor = world
    agency = create_agency(db.session, actor, "  Gamma   Getaways ")
    assert agency.name == "Gamma Getaways" and agency.is_active
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "agency.create"))
    assert event.target_id == str(agency.id) and event.after == {"name": "Gamma Getaways", "is_active": True}


@pytest.mark.parametrize("name", ["A", "", "   ", "x" * 121])
def test_create_agency_rejects_bad_names(world: Any, name: str) -> None:
    _, actor = world
    before = _agencies()
    with pytest.raises(ValidationFailed):
        create_agency(db.session, actor, name)
    assert _agencies() == before


def test_agency_names_are_unique_regardless_of_case(world: Any) -> None:
    _, actor = world
    before = _agencies()
    with pytest.raises(Conflict):
        create_agency(db.session, actor, "ALPHA travel")
    assert _agencies() == before


def test_rename(world: Any) -> None:
    personas, actor = world
    rename_agency(db.session, actor, personas.agency_b_id, "Beta Tours & Cruises")
    assert db.session.get(Agency, personas.agency_b_id).name == "Beta Tours & Cruises"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "agency.rename"))
    assert (event.before, event.after) == ({"name": "Beta Tours"}, {"name": "Beta Tours & Cruises"})
    with pytest.raises(Conflict):
        rename_agency(db.session, actor, personas.agency_b_id, "alpha travel")
    with pytest.raises(NotFound):
        rename_agency(db.session, actor, 999_999, "Whatever")
    # A change of case only is a rename, not a clash with itself.
    rename_agency(db.session, actor, personas.agency_b_id, "BETA TOURS & CRUISES")
    assert db.session.get(Agency, personas.agency_b_id).name == "BETA TOURS & CRUISES"


def test_deactivating_an_agency_revokes_its_users_sessions_only(world: Any) -> None:
    personas, actor = world
    bob = get_user_by_username(db.session, personas.agent_b)
    alice = get_user_by_username(db.session, personas.agent_a)
    bob_token = create_session(db.session, bob, None, None)
    alice_token = create_session(db.session, alice, None, None)
    db.session.commit()

    assert set_agency_active(db.session, actor, personas.agency_b_id, False) == 1
    assert load_session_user(db.session, bob_token, IDLE) is None
    assert load_session_user(db.session, alice_token, IDLE) is not None
    with pytest.raises(Conflict, match="already"):
        set_agency_active(db.session, actor, personas.agency_b_id, False)

    assert set_agency_active(db.session, actor, personas.agency_b_id, True) == 0
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_type == "agency").order_by(AuditEvent.id)
    ).all()
    assert actions == ["agency.deactivate", "agency.activate"]


def test_an_admin_cannot_deactivate_their_own_agency(world: Any) -> None:
    personas, actor = world
    with pytest.raises(Conflict, match="your own agency"):
        set_agency_active(db.session, actor, personas.agency_a_id, False)
    assert db.session.get(Agency, personas.agency_a_id).is_active


def test_counts(world: Any) -> None:
    personas, actor = world
    alpha = db.session.get(Agency, personas.agency_a_id)
    make_client(db.session, alpha)
    make_client(db.session, alpha)
    create_agency(db.session, actor, "Empty Agency")
    rows = {row.agency.name: (row.user_count, row.client_count) for row in list_agencies(db.session)}
    assert rows == {"Alpha Travel": (2, 2), "Beta Tours": (1, 0), "Empty Agency": (0, 0)}
    overview = agency_overview(db.session, personas.agency_a_id)
    assert (overview.user_count, overview.client_count) == (2, 2)
