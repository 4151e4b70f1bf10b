"""Every page fits a phone (390 x 844): no sideways scroll of the page (wide tables scroll in
their card), the top bar's search keeps its width, and its menu collapses behind a button that
opens it. At 1366 px the menu is laid out in the bar as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask

from cms.extensions import db
from cms.models import Agency
from tests import factories
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.conftest import Personas, create_personas
from tests.plugins.test_bundled_http import bundled_app

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from bundled_app(tmp_path)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


def _page_width(page: Any) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def test_every_page_fits_a_phone_and_the_menu_opens(app: Flask, personas: Personas,
                                                    live_server: str, page: Any) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        client = factories.make_client(db.session, agency, first_name="Ada", last_name="Lovelace",
                                       email="ada.lovelace.with.a.long.address@example.com")
        booking = factories.make_booking(db.session, client)
        client_id, booking_id = client.id, booking.id
    page.set_viewport_size(PHONE)
    log_in(page, live_server, personas.agent_a, personas.password)
    for path in ("/", "/clients?q=", f"/clients/{client_id}", f"/bookings/{booking_id}",
                 "/clients/new", "/outbox"):
        page.goto(f"{live_server}{path}")
        assert _page_width(page) <= PHONE["width"], path
    page.screenshot(path=str(SCREENSHOTS / "phone-client-list.png"), full_page=True)
    search = page.locator("#global-search")
    assert search.bounding_box()["width"] >= 300  # not squeezed to a square
    menu = page.locator("#topbar-menu")
    toggle = page.locator("[data-menu-toggle]")
    assert not menu.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert menu.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    assert page.locator("#topbar-menu >> text=Log out").is_visible()
    assert _page_width(page) <= PHONE["width"]
    page.screenshot(path=str(SCREENSHOTS / "phone-menu-open.png"), full_page=True)

    admin = page.new_person()
    admin.set_viewport_size(PHONE)
    log_in(admin, live_server, personas.admin, personas.password)
    for path in ("/admin/health", "/admin/flags", "/admin/plugins", "/admin/plugins/softphone",
                 "/admin/users", "/admin/audit", "/admin/alerts", "/admin/tokens",
                 "/admin/flags/plugin.mail"):
        admin.goto(f"{live_server}{path}")
        assert _page_width(admin) <= PHONE["width"], path
    admin.screenshot(path=str(SCREENSHOTS / "phone-admin-flag.png"), full_page=True)


def test_on_a_wide_screen_the_menu_sits_in_the_bar(app: Flask, personas: Personas,
                                                   live_server: str, page: Any) -> None:
    log_in(page, live_server, personas.agent_a, personas.password)
    assert not page.locator("[data-menu-toggle]").is_visible()
    assert page.locator("#topbar-menu >> text=Log out").is_visible()
    assert page.locator(".topnav >> text=Clients").is_visible()


def test_dark_theme_skip_link_and_announced_plugin_results(app: Flask, personas: Personas,
                                                           live_server: str, page: Any) -> None:
    page.emulate_media(color_scheme="dark")
    log_in(page, live_server, personas.agent_a, personas.password)
    background = page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(15, 20, 32)", background  # the dark --bg
    ink = page.evaluate("() => getComputedStyle(document.querySelector('main h1, main h2')).color")
    assert ink == "rgb(228, 232, 239)", ink
    page.screenshot(path=str(SCREENSHOTS / "dark-dashboard.png"), full_page=True)
    field = page.evaluate("() => getComputedStyle(document.querySelector('main input[type=search]')).backgroundColor")
    assert field == "rgb(27, 35, 51)", field  # a dark field, so its light text reads
    # From the top of the page, the first Tab reaches the skip link; following it moves focus
    # to the content.
    page.goto(f"{live_server}/outbox")  # a page that focuses nothing itself (the dashboard's search does)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # Plugin panels announce their results to screen readers.
    assert page.locator("[data-panel-body]").first.get_attribute("aria-live") == "polite"
    page.emulate_media(color_scheme="light")
    assert page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor") == "rgb(245, 246, 248)"
