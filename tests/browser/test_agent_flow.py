"""An agent's day in a real browser: log in, search, open a client, add a note, log out."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.models import Activity, Agency
from tests import factories
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import Personas

pytestmark = pytest.mark.browser


def _seed_clients(app: Flask, personas: Personas) -> None:
    with app.app_context():
        alpha = db.session.get(Agency, personas.agency_a_id)
        beta = db.session.get(Agency, personas.agency_b_id)
        factories.make_client(db.session, alpha, first_name="Zoë", last_name="Quinterro", email="zoe@example.com")
        factories.make_client(db.session, alpha, first_name="Marco", last_name="Quint", email="marco@example.com")
        factories.make_client(db.session, beta, first_name="Hidden", last_name="Quinton")


def test_login_search_open_note_logout(app: Flask, personas: Personas, live_server: str, page: Any) -> None:
    _seed_clients(app, personas)
    SCREENSHOTS.mkdir(exist_ok=True)

    page.goto(f"{live_server}/")
    assert page.url.startswith(f"{live_server}/login")
    page.fill("input[name=username]", personas.agent_a)
    page.fill("input[name=password]", personas.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    # "/" focuses the search box; search by a prefix with different case and no accent.
    page.keyboard.press("/")
    page.keyboard.type("QUINT")
    page.keyboard.press("Enter")
    page.wait_for_url("**/clients?q=QUINT*")
    results = page.locator("[data-keynav] [data-href]")
    assert results.count() == 2  # Beta Tours' "Quinton" is not visible to an Alpha agent
    assert "Quinton" not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "search.png"), full_page=True)

    # Keyboard: move to the second row (Quinterro sorts after Quint) and open it.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url("**/clients/*")
    assert "Zoë Quinterro" in page.content()

    note = "Prefers aisle seats; call after 5pm <b>not bold</b>"
    page.fill("textarea[name=body]", note)
    page.click("form[action$='/notes'] button[type=submit]")
    page.wait_for_load_state()
    timeline = page.locator(".timeline")
    assert note in timeline.inner_text()  # escaped: the tag shows as text, not markup
    assert timeline.locator("b").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "client.png"), full_page=True)

    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto(f"{live_server}/")
    assert "/login" in page.url
    assert page.console_errors == []  # no CSP violations or script errors on any page

    with app.app_context():
        bodies = db.session.scalars(select(Activity.body).where(Activity.kind == "note")).all()
    assert bodies == [note]
