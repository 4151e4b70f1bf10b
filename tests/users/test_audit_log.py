"""Audit-log queries and the CSV export, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone
from typing import Any

import pytest
from flask import Flask

from cms.audit import Actor
from cms.errors import ValidationFailed
from cms.extensions import db
from cms.models import AuditEvent
from cms.users.audit_log import CSV_COLUMNS, AuditFilters, export_audit_csv, query_audit


def _event(when: str, actor: str, action: str, **fields: Any) -> None:
    db.session.add(
        AuditEvent(
            created_at=datetime.fromisoformat(when).replace(tzinfo=timezone.utc),
            actor_name=actor,
            action=action,
            **fields,
        )
    )


@pytest.fixture
def events(any_db_app: Flask) -> Any:
    with any_db_app.app_context():
        _event("2026-03-01T00:00:00", "ada.admin", "user.create", target_type="user", target_id="7",
               target_label="carol", after={"username": "carol"})
        _event("2026-03-01T23:59:59", "alice.agent", "auth.login.success", ip="198.51.100.1")
        _event("2026-03-02T00:00:00", "alex", "auth.login.failure", after={"reason": "bad password"})
        _event("2026-03-03T12:00:00", "ada.admin", "agency.rename",
               before={"name": "Old"}, after={"name": "=HYPERLINK(\"http://x\")"},
               target_label="-2+3", ip="203.0.113.5")
        _event("2026-03-04T08:00:00", "cli", "user.deactivate")
        db.session.commit()
        yield


def _actions(filters: AuditFilters, **kw: Any) -> list[str]:
    return [e.action for e in query_audit(db.session, filters, **kw).items]


def test_newest_first_without_filters(events: None) -> None:
    assert _actions(AuditFilters()) == [
        "user.deactivate", "agency.rename", "auth.login.failure", "auth.login.success", "user.create",
    ]


def test_actor_prefix_is_case_insensitive(events: None) -> None:
    assert _actions(AuditFilters(actor="AL")) == ["auth.login.failure", "auth.login.success"]
    assert _actions(AuditFilters(actor="ada.admin")) == ["agency.rename", "user.create"]
    assert _actions(AuditFilters(actor="_")) == []  # LIKE wildcards are literal


def test_action_exact_or_prefix(events: None) -> None:
    assert _actions(AuditFilters(action="auth.")) == ["auth.login.failure", "auth.login.success"]
    assert _actions(AuditFilters(action="user.*")) == ["user.deactivate", "user.create"]
    assert _actions(AuditFilters(action="auth")) == []  # no dot, no star: exact
    assert _actions(AuditFilters(action="User.Create")) == ["user.create"]


def test_dates_are_inclusive_whole_utc_days(events: None) -> None:
    day = date(2026, 3, 1)
    assert _actions(AuditFilters(date_from=day, date_to=day)) == ["auth.login.success", "user.create"]
    assert _actions(AuditFilters(date_from=date(2026, 3, 2))) == [
        "user.deactivate", "agency.rename", "auth.login.failure",
    ]
    assert _actions(AuditFilters(date_to=date(2026, 2, 28))) == []


def test_from_after_to_is_rejected(events: None) -> None:
    bad = AuditFilters(date_from=date(2026, 3, 2), date_to=date(2026, 3, 1))
    with pytest.raises(ValidationFailed):
        query_audit(db.session, bad)
    with pytest.raises(ValidationFailed):
        export_audit_csv(db.session, Actor.system("test"), bad)


def test_paging(events: None) -> None:
    page = query_audit(db.session, AuditFilters(), page=2, per_page=2)
    assert (page.total, page.pages, page.capped) == (5, 3, False)
    assert [e.action for e in page.items] == ["auth.login.failure", "auth.login.success"]
    assert query_audit(db.session, AuditFilters(), page=99, per_page=2).page == 3


def _export(filters: AuditFilters) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(export_audit_csv(db.session, Actor.system("test"), filters)))))


def test_csv_header_filters_and_injection_prefix(events: None) -> None:
    rows = _export(AuditFilters(actor="ada"))
    assert rows[0] == CSV_COLUMNS
    assert [row[2] for row in rows[1:]] == ["agency.rename", "user.create"]
    rename = rows[1]
    assert rename[0] == "2026-03-03T12:00:00Z"
    assert rename[5] == "'-2+3"
    assert rename[7] == "203.0.113.5"
    assert rename[9] == '{"name": "Old"}'
    assert rename[10].startswith('{"name": "=HYPERLINK')  # JSON starts with "{": no formula
    assert rows[2][3:6] == ["user", "7", "carol"]


def test_csv_prefixes_every_formula_start(any_db_app: Flask) -> None:
    with any_db_app.app_context():
        for n, start in enumerate(["=", "+", "-", "@", "\t", "\r"]):
            _event(f"2026-01-01T00:00:0{n}", f"{start}evil{n}", "x.test")
        db.session.commit()
        actors = [row[1] for row in _export(AuditFilters(action="x.test"))[1:]]
    assert sorted(actors) == sorted(f"'{s}evil{n}" for n, s in enumerate(["=", "+", "-", "@", "\t", "\r"]))


def test_export_is_audited(events: None) -> None:
    _export(AuditFilters(action="auth."))
    assert _actions(AuditFilters(action="audit.export")) == ["audit.export"]
    event = query_audit(db.session, AuditFilters(action="audit.export")).items[0]
    assert event.after == {"action": "auth."}
