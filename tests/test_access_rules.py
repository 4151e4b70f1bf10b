"""Access rules over every URL of the app, derived from the URL map so new routes are covered.

Anonymous: redirected to the login page. Agents: 403 on /admin. An agent of another agency: 404 on
every record of agency A, and nothing is written. Admins: every admin page renders.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms import create_app
from cms.extensions import db
from cms.models import Activity, Agency, AuditEvent, Booking, Client, User
from tests import factories
from tests.conftest import Browser, Personas, make_settings

PUBLIC = {"auth.login", "health.healthz", "static"}


def _routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every route, read from a throwaway app's URL map."""
    app = create_app(make_settings(Path(tempfile.gettempdir())))  # never connects
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found)


ROUTES = _routes()
PROTECTED = [r for r in ROUTES if r[0] not in PUBLIC]
ADMIN = [r for r in PROTECTED if r[0].startswith("admin.") or r[2].startswith(("/api/admin/", "/metrics"))]
AGENT_AREA = [r for r in PROTECTED if r not in ADMIN and r[0] != "auth.logout"]
# Plugin routes name a plugin, not a record of an agency; tests/plugins covers their agency walls.
WITH_IDS = [r for r in AGENT_AREA if "<" in r[2] and not r[0].startswith("plugins.")]


def _ids(route: tuple[str, str, str]) -> str:
    return f"{route[1]} {route[2]}"


@pytest.fixture
def world(app: Flask, personas: Personas) -> dict[str, Any]:
    """Records of agency A that every parametrized URL points at (and a plugin for admin pages)."""
    from tests.plugins.conftest import HERE, built, install
    from tests.runtime import guests

    install(app, built((HERE / "probe" / "plugin.toml").read_text(), guests.module()))
    with app.app_context():
        alpha = db.session.get(Agency, personas.agency_a_id)
        alice = db.session.scalar(select(User).where(User.username == personas.agent_a))
        client = factories.make_client(db.session, alpha, first_name="Ann", last_name="Alpha")
        booking = factories.make_booking(db.session, client, alice, locator="ACCESS")
        from cms.audit import Actor
        from cms.auth.tokens import create_token

        token, _ = create_token(db.session, Actor(None, "tests", None), personas.admin)
        from cms.models import Activity

        note = Activity(agency_id=alpha.id, client_id=client.id, user_id=alice.id, kind="note",
                        body="a note of agency A")
        db.session.add(note)
        from cms.models import OutboxMail

        mail = OutboxMail(agency_id=alpha.id, user_id=alice.id, client_id=client.id,
                          plugin_id="probe", to_addr="ann@example.com", subject="s", body="b")
        db.session.add(mail)
        db.session.commit()
        return {
            "note_id": note.id,
            "mail_id": mail.id,
            "token_id": token.id,
            "client_id": client.id,
            "booking_id": booking.id,
            "user_id": alice.id,
            "agency_id": alpha.id,
            "plugin_id": "probe",
            "action": "call",
            "key": "plugins.all",
            "version": "1.0.0",
            "slot": "client.sidebar",
        }


def _url(rule: str, ids: dict[str, Any]) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule)


def _row_counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Client, Booking, Activity, AuditEvent, User, Agency)
        )


def _request(browser: Browser, method: str, url: str) -> Any:
    if method == "GET":
        return browser.get(url)
    token_page = "/login" if browser.client.get_cookie("cms_session") is None else "/"
    if method != "POST":
        token = browser.csrf(token_page)
        return browser.client.open(url, method=method, data={"csrf_token": token})
    return browser.post(url, {}, csrf_page=token_page)


def test_every_route_is_classified() -> None:
    assert {"clients.dashboard", "bookings.view_booking", "admin.users"} <= {r[0] for r in ROUTES}
    assert len(PROTECTED) == len(ADMIN) + len(AGENT_AREA) + 1  # + auth.logout


@pytest.mark.parametrize("route", PROTECTED, ids=_ids)
def test_anonymous_is_sent_to_login(app: Flask, world: dict[str, Any], route: tuple[str, str, str]) -> None:
    browser = Browser(app.test_client())
    before = _row_counts(app)
    response = _request(browser, route[1], _url(route[2], world))
    if route[2].startswith(("/api/", "/metrics")):  # an API client is told, not redirected
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    assert _row_counts(app) == before


@pytest.mark.parametrize("route", ADMIN, ids=_ids)
def test_agent_gets_403_on_admin_routes(
    app: Flask, world: dict[str, Any], as_user: Any, route: tuple[str, str, str]
) -> None:
    browser = as_user("alice.agent")
    before = _row_counts(app)
    response = _request(browser, route[1], _url(route[2], world))
    assert response.status_code == 403
    assert _row_counts(app) == before


@pytest.mark.parametrize("route", WITH_IDS, ids=_ids)
def test_other_agency_gets_404_and_nothing_changes(
    app: Flask, world: dict[str, Any], as_user: Any, route: tuple[str, str, str]
) -> None:
    browser = as_user("bob.agent")
    before = _row_counts(app)
    response = _request(browser, route[1], _url(route[2], world))
    assert response.status_code == 404
    assert "Ann" not in response.get_data(as_text=True) and "ACCESS" not in response.get_data(as_text=True)
    assert _row_counts(app) == before


@pytest.mark.parametrize("route", [r for r in WITH_IDS if r[1] == "GET"], ids=_ids)
def test_own_agency_agent_can_open_records(
    world: dict[str, Any], as_user: Any, route: tuple[str, str, str]
) -> None:
    assert as_user("alice.agent").get(_url(route[2], world)).status_code == 200


@pytest.mark.parametrize(
    "route", [r for r in AGENT_AREA if r[1] == "GET" and "<" not in r[2]], ids=_ids
)
@pytest.mark.parametrize("username", ["alice.agent", "bob.agent", "ada.admin"])
def test_agent_pages_open_for_every_persona(
    world: dict[str, Any], as_user: Any, route: tuple[str, str, str], username: str
) -> None:
    assert as_user(username).get(route[2]).status_code == 200


@pytest.mark.parametrize("route", [r for r in ADMIN if r[1] == "GET"], ids=_ids)
def test_admin_pages_render_for_admins(
    world: dict[str, Any], as_user: Any, route: tuple[str, str, str]
) -> None:
    response = as_user("ada.admin").get(_url(route[2], world))
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert as_user("ada.admin").get(response.headers["Location"]).status_code == 200
