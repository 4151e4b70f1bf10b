"""The bundled plugins (wasm/) through the HTTP API as agents of two agencies: the terminal books
for real, mail reaches a real SMTP server, the softphone logs calls on the timeline, and every
faulty variant yields its fault kind while the page keeps rendering."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from cms.app_state import state
from cms.audit import Actor
from cms.extensions import db
from cms.models import Activity, Booking, OutboxMail
from cms.plugins import lifecycle
from cms.plugins.inventory import demo_schedule
from cms.plugins.registry import PluginRegistry
from cms.plugins.service import sync_installs
from plugin_sdk.manifest import load_manifest
from tests.conftest import Browser, Personas, build_app, create_personas, make_settings
from tests.plugins.test_api import make_client

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "wasm"


def bundled_app(tmp_path: Path, **settings: Any) -> Iterator[Flask]:
    for app in build_app(make_settings(tmp_path, plugin_dir=WASM, **settings)):
        with app.app_context():
            sync_installs(db.session, state().plugins)
            db.session.add_all(demo_schedule(date.today(), 30))
            db.session.commit()
        yield app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from bundled_app(tmp_path)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


def act(browser: Browser, plugin: str, action: str, params: dict[str, Any], token: str,
        client_id: int | None = None) -> Any:
    return browser.client.post(f"/api/plugins/{plugin}/actions/{action}", json=params,
                               query_string={"client_id": client_id} if client_id else {},
                               headers={"X-CSRFToken": token})


def terminal(browser: Browser, command: str, token: str, client_id: int | None) -> dict[str, Any]:
    response = act(browser, "terminal", "command", {"command": command}, token, client_id)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_a_booking_made_in_the_terminal_is_a_real_booking(app: Flask, personas: Personas,
                                                         browser: Browser) -> None:
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace")
    browser.login(personas.agent_a)
    token = browser.csrf("/clients")
    day = date.today() + timedelta(days=10)
    shown = terminal(browser, f"AN{day.day:02d}{day.strftime('%b').upper()}JFKLHR", token, client_id)
    assert shown["result"]["flights"] > 0
    lines = shown["result"]["lines"]
    assert any(" 1 " in line and "JFK LHR" in line for line in lines)
    # Sell one seat in the first cabin that line 1 has open.
    sold = None
    for cabin in "YWCF":
        answer = terminal(browser, f"SS1{cabin}1", token, client_id)
        if "error" not in answer["result"]:
            sold = cabin
            break
    assert sold is not None
    terminal(browser, "NM1LOVELACE/ADA MRS", token, client_id)
    ended = terminal(browser, "ER", token, client_id)
    locator = ended["result"]["locator"]
    assert any(f"REC LOC {locator}" in line for line in ended["result"]["lines"])
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.record_locator == locator))
        assert booking is not None and booking.client_id == client_id and booking.status == "held"
        assert booking.passengers[0].last_name.upper() == "LOVELACE"
        assert booking.segments[0].origin == "JFK" and booking.segments[0].cabin == sold
    page = browser.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert locator in page and "JFK" in page
    # Another agency's agent can neither see it nor retrieve it in their terminal.
    browser.logout()
    browser.login(personas.agent_b)
    assert browser.get(f"/bookings/{booking.id}").status_code == 404
    token = browser.csrf("/clients")
    assert terminal(browser, f"RT{locator}", token, None)["result"].get("error") == "NO RECORD"


def test_terminal_errors_are_gds_style(app: Flask, personas: Personas, browser: Browser) -> None:
    browser.login(personas.agent_a)
    token = browser.csrf("/clients")
    assert terminal(browser, "ZZTOP", token, None)["result"]["error"] == "INVALID FORMAT"
    assert terminal(browser, "ER", token, None)["result"]["error"].startswith("NEED")
    assert act(browser, "terminal", "command", {"command": ""}, token).status_code == 422
