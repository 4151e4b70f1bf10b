"""The booking form in a real browser: rows added by app.js reach the server; no CSP errors."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.models import Agency, Booking
from tests import factories
from tests.bookings.payloads import DAY, START
from tests.browser.conftest import SCREENSHOTS, live_server, page  # noqa: F401  (fixtures)
from tests.conftest import Personas

pytestmark = pytest.mark.browser


def _fill_segment(page: Any, i: int, carrier: str, number: str, route: str, day: int, fare: str) -> None:
    origin, destination = route.split("-")
    page.fill(f"#segments-{i}-carrier", carrier)
    page.fill(f"#segments-{i}-flight_number", number)
    page.fill(f"#segments-{i}-origin", origin)
    page.fill(f"#segments-{i}-destination", destination)
    page.fill(f"#segments-{i}-departure_date", (START + day * DAY).isoformat())
    page.fill(f"#segments-{i}-fare", fare)


def test_added_rows_are_saved_and_cancel_asks_first(
    app: Flask, personas: Personas, live_server: str, page: Any  # noqa: F811
) -> None:
    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        client_id = factories.make_client(db.session, agency, first_name="Zoë", last_name="Quinterro").id
    SCREENSHOTS.mkdir(exist_ok=True)

    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", personas.agent_a)
    page.fill("input[name=password]", personas.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/clients/{client_id}/bookings/new")
    for i, name in enumerate(["Zoë", "Marco"]):
        page.fill(f"#passengers-{i}-first_name", name)
        page.fill(f"#passengers-{i}-last_name", "Quinterro")
    page.click("text=+ Add passenger")
    page.fill("#passengers-2-first_name", "Lia")
    page.fill("#passengers-2-last_name", "Quinterro")
    page.select_option("#passengers-2-pax_type", "CHD")
    _fill_segment(page, 0, "ba", "117", "lhr-jfk", 0, "420.50")
    _fill_segment(page, 1, "BA", "178", "JFK-LHR", 7, "380")
    page.click("text=+ Add segment")  # a 4th row while the 3rd stays blank
    _fill_segment(page, 3, "U2", "8", "LHR-GVA", 9, "0")
    _fill_segment(page, 2, "XX", "1", "GVA-GVA", 8, "1")  # same airports: an error on row 3
    page.click("button.primary[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#segments-2-destination[aria-invalid=true]").count() == 1
    assert page.input_value("#passengers-2-first_name") == "Lia"
    page.screenshot(path=str(SCREENSHOTS / "booking-form-errors.png"), full_page=True)

    for field in ("carrier", "flight_number", "origin", "destination", "departure_date", "fare"):
        page.fill(f"#segments-2-{field}", "")
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server}/bookings/*")
    page.screenshot(path=str(SCREENSHOTS / "booking-page.png"), full_page=True)

    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert [p.pax_type for p in booking.passengers] == ["ADT", "ADT", "CHD"]
        assert [s.flight for s in booking.segments] == ["BA117", "BA178", "U28"]
    assert booking.record_locator in page.locator("h1").inner_text()

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button:has-text('Cancel booking')")
    page.wait_for_timeout(200)
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == "quoted"  # dismissed: nothing sent
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Cancel booking')")
    page.wait_for_load_state()
    assert "is now cancelled" in page.content()
    # 422 answers and the missing favicon are logged as failed loads; CSP or script errors are not.
    assert [e for e in page.console_errors if not e.startswith("Failed to load resource")] == []
