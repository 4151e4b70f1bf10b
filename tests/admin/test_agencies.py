"""Admin agency pages: list with counts, create, rename, deactivate and activate."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms.extensions import db
from cms.models import Agency, AuditEvent
from tests.conftest import Browser, Personas
from tests.factories import make_client


@pytest.fixture
def admin(as_user: Any) -> Browser:
    return as_user("ada.admin")


def _agency_names(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Agency.name).order_by(Agency.id)))


def _agency_events(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_type == "agency").order_by(AuditEvent.id)
        ))


def test_list_shows_counts(app: Flask, admin: Browser, personas: Personas) -> None:
    with app.app_context():
        make_client(db.session, db.session.get(Agency, personas.agency_b_id))
    page = admin.get("/admin/agencies").get_data(as_text=True)
    rows = re.findall(
        r'<a href="/admin/agencies/\d+">([^<]+)</a>.*?'
        r'<td class="num"><a[^>]*>(\d+)</a></td>\s*<td class="num">(\d+)</td>',
        page, flags=re.S,
    )
    assert rows == [("Alpha Travel", "2", "0"), ("Beta Tours", "1", "1")]
    assert '<a href="/admin/agencies" aria-current="page">Agencies</a>' in page


def test_create_agency(app: Flask, admin: Browser) -> None:
    response = admin.post("/admin/agencies", {"name": "  Gamma  Getaways "})
    assert response.status_code == 303
    assert _agency_names(app)[-1] == "Gamma Getaways"
    assert "Agency Gamma Getaways created." in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert _agency_events(app) == ["agency.create"]


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("alpha travel", 409, "already exists"),
        ("A", 422, "Use 2 to 120 characters."),
        ("", 422, "This field is required."),
        ("x" * 121, 422, "120"),
    ],
)
def test_create_agency_rejects_bad_names(
    app: Flask, admin: Browser, name: str, status: int, message: str
) -> None:
    response = admin.post("/admin/agencies", {"name": name})
    assert response.status_code == status and message in response.get_data(as_text=True)
    assert _agency_names(app) == ["Alpha Travel", "Beta Tours"]
    assert _agency_events(app) == []


def test_rename(app: Flask, admin: Browser, personas: Personas) -> None:
    url = f"/admin/agencies/{personas.agency_b_id}"
    assert 'value="Beta Tours"' in admin.get(url).get_data(as_text=True)
    assert admin.post(f"{url}/rename", {"name": "Beta Cruises"}).status_code == 303
    clash = admin.post(f"{url}/rename", {"name": "ALPHA TRAVEL"})
    assert clash.status_code == 409 and "already exists" in clash.get_data(as_text=True)
    short = admin.post(f"{url}/rename", {"name": "B"})
    assert short.status_code == 422
    assert _agency_names(app) == ["Alpha Travel", "Beta Cruises"]
    assert _agency_events(app) == ["agency.rename"]


def test_deactivated_agency_logs_out_and_locks_out_its_agents(
    app: Flask, admin: Browser, as_user: Any, personas: Personas
) -> None:
    bob = as_user("bob.agent")
    alice = as_user("alice.agent")
    url = f"/admin/agencies/{personas.agency_b_id}"
    assert 'data-confirm="Deactivate Beta Tours?' in admin.get(url).get_data(as_text=True)
    response = admin.post(f"{url}/deactivate")
    assert response.status_code == 303
    assert "1 session(s) ended" in admin.get(url).get_data(as_text=True)

    assert bob.get("/").status_code == 302
    assert Browser(app.test_client()).login("bob.agent").status_code == 401
    assert alice.get("/").status_code == 200  # other agencies are untouched

    assert admin.post(f"{url}/activate").status_code == 303
    assert Browser(app.test_client()).login("bob.agent").status_code == 302
    assert _agency_events(app) == ["agency.deactivate", "agency.activate"]


def test_admin_cannot_deactivate_their_own_agency(app: Flask, admin: Browser, personas: Personas) -> None:
    url = f"/admin/agencies/{personas.agency_a_id}"
    assert f"{url}/deactivate" not in admin.get(url).get_data(as_text=True)
    assert admin.post(f"{url}/deactivate").status_code == 409
    with app.app_context():
        assert db.session.get(Agency, personas.agency_a_id).is_active
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.target_type == "agency")) == 0


def test_unknown_agency_is_404(admin: Browser) -> None:
    assert admin.get("/admin/agencies/999").status_code == 404
    assert admin.post("/admin/agencies/999/rename", {"name": "Nope"}).status_code == 404
