"""User services on SQLite and PostgreSQL: validation, conflicts, session revocation, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms.audit import Actor
from cms.auth.passwords import Passwords
from cms.auth.sessions import create_session, load_session_user
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.extensions import db
from cms.models import Agency, AuditEvent, Role, User, UserSession
from cms.users.service import (
    GENERATED_PASSWORD_ALPHABET,
    GENERATED_PASSWORD_LENGTH,
    UserFilters,
    create_user,
    create_user_in_agency,
    deactivate_user,
    force_logout,
    get_user_by_username,
    list_users,
    reactivate_user,
    reset_password,
    user_overview,
)
from tests.conftest import create_personas
from tests.factories import PASSWORD, make_user

PASSWORDS = Passwords(fast=True)
IDLE = timedelta(hours=12)


@pytest.fixture
def world(any_db_app: Flask) -> Any:
    personas = create_personas(any_db_app)
    with any_db_app.app_context():
        admin = get_user_by_username(db.session, personas.admin)
        yield personas, Actor.for_user(admin, "203.0.113.9", "req-1")


def _new(agency: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "username": "Carol.New",
        "display_name": "Carol New",
        "email": "Carol@Example.com",
        "role": "agent",
        "agency_id": agency,
        "password": "a-long-enough-password",
    }
    values.update(overrides)
    return values


def _count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def _login(user: User) -> str:
    token = create_session(db.session, user, "198.51.100.7", "pytest")
    db.session.commit()
    return token


def test_create_user_normalizes_and_audits_without_hash(world: Any) -> None:
    personas, actor = world
    user = create_user(db.session, PASSWORDS, actor, **_new(personas.agency_a_id))
    assert (user.username, user.email, user.role) == ("carol.new", "carol@example.com", Role.AGENT)
    assert PASSWORDS.verify(user.password_hash, "a-long-enough-password")
    assert user.password_changed_at is not None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.create"))
    assert event is not None and event.target_id == str(user.id) and event.actor_name == "ada.admin"
    assert event.after["username"] == "carol.new" and event.ip == "203.0.113.9"
    assert "password_hash" not in event.after and user.password_hash not in str(event.after)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "ünïcode"}, "username"),
        ({"username": "x" * 65}, "username"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "n" * 121}, "display_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@" + "b" * 250 + ".com"}, "email"),
        ({"role": "superuser"}, "role"),
        ({"agency_id": 999_999}, "agency_id"),
        ({"password": "short"}, "password"),
        ({"password": " padded-password "}, "password"),
    ],
)
def test_create_user_rejects_bad_input_and_writes_nothing(
    world: Any, overrides: dict[str, Any], field: str
) -> None:
    personas, actor = world
    users, events = _count(User), _count(AuditEvent)
    with pytest.raises(ValidationFailed) as caught:
        create_user(db.session, PASSWORDS, actor, **_new(personas.agency_a_id, **overrides))
    assert field in caught.value.fields
    assert (_count(User), _count(AuditEvent)) == (users, events)


def test_duplicate_username_in_any_case_is_a_conflict(world: Any) -> None:
    personas, actor = world
    users = _count(User)
    with pytest.raises(Conflict):
        create_user(db.session, PASSWORDS, actor, **_new(personas.agency_b_id, username="ALICE.agent"))
    assert _count(User) == users


def test_create_user_in_agency_creates_the_agency_once(world: Any) -> None:
    cli = Actor.system("cli")
    fields = {"display_name": "X", "email": None, "role": "admin", "password": "a-long-password"}
    first = create_user_in_agency(
        db.session, PASSWORDS, cli, agency_name="Head Office", username="user.one", **fields
    )
    second = create_user_in_agency(
        db.session, PASSWORDS, cli, agency_name="head  office", username="user.two", **fields
    )
    assert first.agency_id == second.agency_id
    assert db.session.scalar(select(func.count()).where(Agency.name == "Head Office")) == 1


def test_create_user_in_new_agency_writes_nothing_when_the_user_is_invalid(world: Any) -> None:
    agencies, events = _count(Agency), _count(AuditEvent)
    with pytest.raises(ValidationFailed):
        create_user_in_agency(
            db.session, PASSWORDS, Actor.system("cli"), agency_name="Ghost Agency", username="ghost",
            display_name="Ghost", email=None, role="agent", password="short",
        )
    assert (_count(Agency), _count(AuditEvent)) == (agencies, events)


def test_deactivate_revokes_sessions_and_blocks_the_session_loader(world: Any) -> None:
    personas, actor = world
    alice = get_user_by_username(db.session, personas.agent_a)
    tokens = [_login(alice), _login(alice)]
    assert deactivate_user(db.session, actor, alice.id) == 2
    db.session.expire_all()
    assert not alice.is_active
    assert all(load_session_user(db.session, token, IDLE) is None for token in tokens)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.deactivate"))
    assert event.before == {"is_active": True}
    assert event.after == {"is_active": False, "sessions_revoked": 2}


def test_deactivate_conflicts(world: Any) -> None:
    personas, actor = world
    with pytest.raises(Conflict, match="your own account"):
        deactivate_user(db.session, actor, actor.user_id)
    alice = get_user_by_username(db.session, personas.agent_a)
    deactivate_user(db.session, actor, alice.id)
    with pytest.raises(Conflict, match="already"):
        deactivate_user(db.session, actor, alice.id)
    with pytest.raises(NotFound):
        deactivate_user(db.session, actor, 999_999)


def test_reactivate(world: Any) -> None:
    personas, actor = world
    alice = get_user_by_username(db.session, personas.agent_a)
    deactivate_user(db.session, actor, alice.id)
    reactivate_user(db.session, actor, alice.id)
    db.session.expire_all()
    assert alice.is_active
    with pytest.raises(Conflict):
        reactivate_user(db.session, actor, alice.id)


def test_reset_password_given_and_generated(world: Any) -> None:
    personas, actor = world
    alice = get_user_by_username(db.session, personas.agent_a)
    token = _login(alice)
    assert reset_password(db.session, PASSWORDS, actor, alice.id, "brand-new-password") is None
    db.session.expire_all()
    assert PASSWORDS.verify(alice.password_hash, "brand-new-password")
    assert not PASSWORDS.verify(alice.password_hash, PASSWORD)
    assert load_session_user(db.session, token, IDLE) is None

    generated = reset_password(db.session, PASSWORDS, actor, alice.id, None)
    assert generated and len(generated) == GENERATED_PASSWORD_LENGTH
    assert set(generated) <= set(GENERATED_PASSWORD_ALPHABET)
    db.session.expire_all()
    assert PASSWORDS.verify(alice.password_hash, generated)
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.password_reset").order_by(AuditEvent.id)
    ).all()
    assert [e.after["generated"] for e in events] == [False, True]
    assert events[1].before["password_changed_at"] == events[0].after["password_changed_at"]
    assert all(generated not in str(e.after) for e in events)


def test_reset_password_rejects_weak_password_and_keeps_the_old_one(world: Any) -> None:
    personas, actor = world
    alice = get_user_by_username(db.session, personas.agent_a)
    token = _login(alice)
    with pytest.raises(ValidationFailed):
        reset_password(db.session, PASSWORDS, actor, alice.id, "weak")
    db.session.expire_all()
    assert PASSWORDS.verify(alice.password_hash, PASSWORD)
    assert load_session_user(db.session, token, IDLE) is not None


def test_force_logout_counts_and_overview_reports_live_sessions(world: Any) -> None:
    personas, actor = world
    alice = get_user_by_username(db.session, personas.agent_a)
    _login(alice)
    _login(alice)
    assert user_overview(db.session, alice.id, IDLE).live_sessions == 2
    assert force_logout(db.session, actor, alice.id) == 2
    overview = user_overview(db.session, alice.id, IDLE)
    assert overview.live_sessions == 0
    assert [e.action for e in overview.recent_events] == ["user.force_logout"]
    event = overview.recent_events[0]
    assert (event.before, event.after) == ({"open_sessions": 2}, {"open_sessions": 0})
    assert force_logout(db.session, actor, alice.id) == 0
    assert _count(UserSession) == 2  # revoked, not deleted


def test_list_users_filters_and_pages(world: Any) -> None:
    personas, actor = world
    agency_b = db.session.get(Agency, personas.agency_b_id)
    for n in range(5):
        make_user(db.session, agency_b, f"beta.{n}", display_name=f"Zed Person {n}")
    page = list_users(db.session, UserFilters(agency_id=personas.agency_b_id), page=2, per_page=4)
    assert (page.total, page.pages, page.page) == (6, 2, 2)
    assert [u.username for u in page.items] == ["beta.4", "bob.agent"]
    assert [u.username for u in list_users(db.session, UserFilters(q="ALI")).items] == ["alice.agent"]
    assert len(list_users(db.session, UserFilters(q="zed p")).items) == 5
    assert [u.username for u in list_users(db.session, UserFilters(role=Role.ADMIN)).items] == ["ada.admin"]
    assert list_users(db.session, UserFilters(q="%")).total == 0  # wildcards are literal
    deactivate_user(db.session, actor, get_user_by_username(db.session, "beta.0").id)
    inactive = list_users(db.session, UserFilters(active=False)).items
    assert [u.username for u in inactive] == ["beta.0"]

