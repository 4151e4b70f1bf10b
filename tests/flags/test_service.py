"""set_flag and ensure_plugin_flag on SQLite and PostgreSQL: validation, audit, versions, and two
admins changing one flag at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cms.audit import Actor
from cms.errors import NotFound, ValidationFailed
from cms.extensions import db
from cms.flags import config_version, ensure_plugin_flag, get_flag, list_flags, set_flag
from cms.models import AuditEvent, FeatureFlag, Role
from tests import factories

ADMIN = Actor(1, "ada.admin", 1, Role.ADMIN, "192.0.2.1", "req-1")


@pytest.fixture
def flags_app(any_db_app: Flask) -> Flask:
    """An app on SQLite and PostgreSQL with an admin and the softphone's flag."""
    with any_db_app.app_context():
        agency = factories.make_agency(db.session, "Alpha Travel")
        factories.make_user(db.session, agency, "ada.admin", Role.ADMIN)
        ensure_plugin_flag(db.session, "softphone", "Softphone")
        db.session.commit()
    return any_db_app


def _events(key: str) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.target_id == key).order_by(AuditEvent.id)))


def test_ensure_plugin_flag_adds_an_on_kill_switch_once(flags_app: Flask) -> None:
    with flags_app.app_context():
        flag = get_flag(db.session, "plugin.softphone")
        assert (flag.enabled, flag.rollout_percent, flag.kind, flag.default) == (True, 100, "kill_switch", False)
        version = config_version(db.session)
        ensure_plugin_flag(db.session, "softphone", "Softphone")
        db.session.commit()
        assert config_version(db.session) == version == 1
        with pytest.raises(ValidationFailed):
            ensure_plugin_flag(db.session, "Not An Id!", "Bad")


def test_set_flag_audits_before_after_and_reason_and_bumps_the_version(flags_app: Flask) -> None:
    seen: list[tuple[int, bool]] = []

    def notify(version: int) -> None:  # called after the commit: another connection sees it
        with Session(db.engine) as other:
            seen.append((version, other.get(FeatureFlag, "plugin.softphone").enabled))  # type: ignore[union-attr]

    with flags_app.app_context():
        flag = set_flag(db.session, ADMIN, "plugin.softphone", enabled=False,
                        rollout_percent=40, reason="  Outage: calls drop  ", notify=notify)
        assert (flag.enabled, flag.rollout_percent, flag.updated_by) == (False, 40, "ada.admin")
        assert seen == [(2, False)] and config_version(db.session) == 2
        [event] = _events("plugin.softphone")
        assert event.action == "flag.update" and event.actor_name == "ada.admin"
        assert event.before == {"enabled": True, "rollout_percent": 100}
        assert event.after == {"enabled": False, "rollout_percent": 40, "reason": "Outage: calls drop"}
        assert (event.ip, event.request_id, event.target_type) == ("192.0.2.1", "req-1", "flag")


def test_a_declared_core_flag_gets_its_row_on_first_change(flags_app: Flask) -> None:
    with flags_app.app_context():
        assert db.session.get(FeatureFlag, "plugins.auto_quarantine") is None
        assert get_flag(db.session, "plugins.auto_quarantine").enabled is True
        assert "plugins.auto_quarantine" in [f.key for f in list_flags(db.session)]
        set_flag(db.session, ADMIN, "plugins.auto_quarantine",
                 targeting={"agents": ["Alice.Agent", 7, "7"], "agencies": ["3", 3], "roles": ["admin"]},
                 reason="only admins for now")
        row = db.session.get(FeatureFlag, "plugins.auto_quarantine")
        assert row is not None and row.kind == "operational" and row.enabled is True
        assert row.targeting == {"agents": ["alice.agent", "7"], "agencies": [3], "roles": ["admin"]}


def test_a_change_that_changes_nothing_writes_nothing(flags_app: Flask) -> None:
    with flags_app.app_context():
        flag = set_flag(db.session, ADMIN, "plugin.softphone", enabled=True, reason="just checking")
        assert flag.version == 1 and config_version(db.session) == 1
        assert _events("plugin.softphone") == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"enabled": False, "reason": ""}, "reason"),
        ({"enabled": False, "reason": " ab "}, "reason"),
        ({"enabled": False, "reason": "x" * 501}, "reason"),
        ({"rollout_percent": -1, "reason": "why not"}, "rollout_percent"),
        ({"rollout_percent": 101, "reason": "why not"}, "rollout_percent"),
        ({"rollout_percent": True, "reason": "why not"}, "rollout_percent"),
        ({"enabled": "no", "reason": "why not"}, "enabled"),
        ({"targeting": {"teams": ["x"]}, "reason": "why not"}, "targeting"),
        ({"targeting": {"roles": ["boss"]}, "reason": "why not"}, "targeting"),
        ({"targeting": {"agencies": ["HQ"]}, "reason": "why not"}, "targeting"),
        ({"targeting": {"agents": "alice"}, "reason": "why not"}, "targeting"),
        ({"targeting": {"agents": [""]}, "reason": "why not"}, "targeting"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    flags_app: Flask, changes: dict[str, Any], field: str
) -> None:
    with flags_app.app_context():
        with pytest.raises(ValidationFailed) as refused:
            set_flag(db.session, ADMIN, "plugin.softphone", **changes)
        assert field in refused.value.fields
        assert get_flag(db.session, "plugin.softphone").version == 1
        assert config_version(db.session) == 1 and _events("plugin.softphone") == []


@pytest.mark.parametrize("key", ["plugin.missing", "made.up", "Bad Key", "x" * 80])
def test_unknown_flags_are_not_found(flags_app: Flask, key: str) -> None:
    with flags_app.app_context():
        with pytest.raises(NotFound):
            set_flag(db.session, ADMIN, key, enabled=False, reason="turn it off")
        with pytest.raises(NotFound):
            get_flag(db.session, key)
        assert db.session.scalar(select(func.count()).select_from(FeatureFlag)) == 1


def test_two_admins_changing_one_flag_at_once_leave_a_consistent_trail(flags_app: Flask) -> None:
    """Each round, two threads (own sessions, like two workers) change the flag at the same
    moment; every change lands, in some order, and the audit trail chains without gaps."""
    rounds = 8
    errors: list[BaseException] = []
    with flags_app.app_context():
        engine = db.engine

        def admin(name: str, changes: dict[str, Any], barrier: threading.Barrier) -> None:
            actor = Actor(1, name, 1, Role.ADMIN)
            with Session(engine) as session:
                barrier.wait()
                try:
                    set_flag(session, actor, "plugin.softphone", reason=f"{name} changes it", **changes)
                except BaseException as error:  # surfaced below
                    errors.append(error)

        for n in range(rounds):
            barrier = threading.Barrier(2)
            threads = [
                threading.Thread(target=admin, args=("ada.admin", {"enabled": n % 2 == 1}, barrier)),
                threading.Thread(target=admin, args=("eve.admin", {"rollout_percent": 10 + n}, barrier)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []
        events = _events("plugin.softphone")
        assert len(events) == 2 * rounds  # both changes of every round landed
        row = db.session.get(FeatureFlag, "plugin.softphone")
        assert row is not None
        assert config_version(db.session) == 1 + len(events)
        assert row.version == 1 + len(events)
        state: dict[str, Any] = {"enabled": True, "rollout_percent": 100}
        for event in events:  # replaying the trail from the start gives the stored flag
            assert event.before == {k: state[k] for k in event.before}
            state.update({k: v for k, v in event.after.items() if k != "reason"})
        assert state == {"enabled": row.enabled, "rollout_percent": row.rollout_percent}
