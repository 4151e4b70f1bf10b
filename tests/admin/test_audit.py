"""The audit log page and its CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask

from cms.extensions import db
from cms.models import AuditEvent
from cms.users.audit_log import CSV_COLUMNS
from tests.conftest import Browser


@pytest.fixture
def admin(app: Flask, as_user: Any) -> Browser:
    browser = as_user("ada.admin")
    with app.app_context():
        db.session.add_all([
            AuditEvent(created_at=datetime(2026, 3, 1, 9, tzinfo=timezone.utc), actor_name="ada.admin",
                       action="agency.rename", target_type="agency", target_id="2",
                       target_label="=cmd|' /C calc'!A0",
                       before={"name": "Old Name"}, after={"name": "New Name"}, ip="203.0.113.5"),
            AuditEvent(created_at=datetime(2026, 3, 2, 9, tzinfo=timezone.utc), actor_name="bob.agent",
                       action="auth.login.failure", after={"reason": "bad password"}),
        ])
        db.session.commit()
    return browser


def _rows(page: str) -> list[str]:
    return re.findall(r'<td class="mono nowrap action">([^<]+)</td>', page)


def test_page_lists_newest_first_with_compact_changes(admin: Browser) -> None:
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert _rows(page) == ["auth.login.success", "auth.login.failure", "agency.rename"]
    assert "2026-03-01 09:00:00" in page and "203.0.113.5" in page
    assert re.search(r"name:</span>\s*Old Name → New Name", page)
    assert '<a href="/admin/agencies/2">=cmd|&#39; /C calc&#39;!A0</a>' in page
    assert '<a href="/admin/audit" aria-current="page">Audit log</a>' in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=BOB", ["auth.login.failure"]),
        ("action=auth.", ["auth.login.success", "auth.login.failure"]),
        ("action=agency.rename", ["agency.rename"]),
        ("from=2026-03-01&to=2026-03-01", ["agency.rename"]),
        ("from=2026-03-02&to=2026-03-02&actor=ada", []),
    ],
)
def test_filters(admin: Browser, query: str, expected: list[str]) -> None:
    response = admin.get(f"/admin/audit?{query}")
    assert response.status_code == 200
    assert _rows(response.get_data(as_text=True)) == expected


def test_export_link_keeps_the_filters(admin: Browser) -> None:
    query = "actor=ada&action=agency.&from=2026-03-01&to=2026-03-31"
    page = admin.get(f"/admin/audit?{query}").get_data(as_text=True)
    link = re.search(r'href="(/admin/audit\.csv\?[^"]+)"', page)
    assert link
    assert link.group(1).replace("&amp;", "&") == f"/admin/audit.csv?{query}"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-02-30", "Not a valid date value."),
        ("to=yesterday", "Not a valid date value."),
        ("from=2026-03-02&to=2026-03-01", "Must be on or before the end date."),
        ("actor=" + "a" * 65, "Field cannot be longer than 64 characters."),
    ],
)
def test_bad_filters_are_422_with_a_message(admin: Browser, query: str, message: str) -> None:
    response = admin.get(f"/admin/audit?{query}")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page
    assert "Please check the filters" in page or "The start date is after the end date." in page
    assert 'name="actor"' in page  # the filter form is shown again to fix

    as_json = admin.get(f"/admin/audit?{query}", headers={"Accept": "application/json"})
    assert as_json.status_code == 422
    assert as_json.get_json()["error"]["code"] == "invalid"

    csv_response = admin.get(f"/admin/audit.csv?{query}")
    assert csv_response.status_code == 422


def test_csv_export(admin: Browser) -> None:
    response = admin.get("/admin/audit.csv?actor=ada&action=agency.")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="audit-\d{8}-\d{6}\.csv"', disposition)
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 2
    rename = dict(zip(CSV_COLUMNS, rows[1]))
    assert rename["time"] == "2026-03-01T09:00:00Z"
    assert rename["target label"] == "'=cmd|' /C calc'!A0"
    assert rename["before"] == '{"name": "Old Name"}' and rename["after"] == '{"name": "New Name"}'


def test_csv_export_is_audited(admin: Browser) -> None:
    admin.get("/admin/audit.csv?action=auth.")
    page = admin.get("/admin/audit?action=audit.export").get_data(as_text=True)
    assert _rows(page) == ["audit.export"]
    assert re.search(r"action:</span>\s*auth\.", page)
