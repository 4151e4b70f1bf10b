"""Booking pages through HTTP: the form, validation answers, the booking page, status buttons."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms.extensions import db
from cms.models import Activity, Agency, AuditEvent, Booking, Client, Passenger, Segment
from tests import factories
from tests.bookings.payloads import START, booking_form, filled_segment, passenger_row, segment_row
from tests.conftest import Browser, Personas

LOCATOR = re.compile(r"^[A-HJ-NP-Z2-9]{6}$")


@pytest.fixture
def alpha_client(app: Flask, personas: Personas) -> int:
    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        return factories.make_client(db.session, agency, first_name="Zoë", last_name="Quinterro").id


@pytest.fixture
def alice(as_user: Any) -> Browser:
    return as_user("alice.agent")


def _counts(app: Flask) -> tuple[int, ...]:
    """Rows of bookings, passengers, segments, booking audit events and activities."""
    with app.app_context():
        counts = [
            db.session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Booking, Passenger, Segment, Activity)
        ]
        audited = select(func.count()).where(AuditEvent.action.startswith("booking."))
        counts.insert(3, db.session.scalar(audited) or 0)
        return tuple(counts)


def _only_booking(app: Flask) -> Booking:
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        booking.passengers, booking.segments  # load before the session closes
        return booking


def _create(alice: Browser, client_id: int, **form: Any) -> Any:
    return alice.post(f"/clients/{client_id}/bookings/new", booking_form(**form))


def test_new_form_renders_rows_and_add_buttons(alice: Browser, alpha_client: int) -> None:
    page = alice.get(f"/clients/{alpha_client}/bookings/new").get_data(as_text=True)
    assert "New booking for Zoë Quinterro" in page
    # The client is the first passenger, prefilled; the second row stays empty.
    def value_of(name: str) -> str | None:
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
        found = re.search(r'value="([^"]*)"', tag.group(0)) if tag else None
        return found.group(1) if found else None

    assert (value_of("passengers-0-first_name"), value_of("passengers-0-last_name")) == (
        "Zoë", "Quinterro")
    assert value_of("passengers-1-first_name") in ("", None)
    assert page.count('name="passengers-1-first_name"') == 1 and "passengers-2-" not in page
    assert page.count('name="segments-2-carrier"') == 1 and "segments-3-" not in page
    assert 'data-add-row="passenger-rows"' in page and 'data-add-row="segment-rows"' in page
    assert page.count("data-row") == 5
    assert 'type="date"' in page and 'name="csrf_token"' in page
    assert "style=" not in page and "onclick" not in page and "<script>" not in page


def test_create_stores_the_booking_and_shows_it(app: Flask, alice: Browser, alpha_client: int) -> None:
    response = _create(alice, alpha_client, passengers=2, segments=2, status="confirmed", currency="usd")
    assert response.status_code == 303

    booking = _only_booking(app)
    assert response.headers["Location"] == f"/bookings/{booking.id}"
    assert LOCATOR.match(booking.record_locator)
    assert (booking.status, booking.currency, booking.client_id) == ("confirmed", "USD", alpha_client)
    assert [p.first_name for p in booking.passengers] == ["Pax0", "Pax1"]
    assert [s.flight for s in booking.segments] == ["BA117", "BA118"]
    assert str(booking.total_fare) == "841.00"

    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert booking.record_locator in page and "USD 841.00" in page
    assert "BA 117" in page and "LHR → JFK" in page and "Economy" in page
    assert "TRAVELLER/Pax0" in page


def test_create_writes_audit_event_and_client_activity(app: Flask, alice: Browser, alpha_client: int) -> None:
    _create(alice, alpha_client, passengers=1, segments=1)
    booking = _only_booking(app)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith("booking."))).one()
        activity = db.session.scalars(select(Activity)).one()
    assert (event.action, event.actor_name, event.target_id) == ("booking.create", "alice.agent", str(booking.id))
    assert activity.client_id == alpha_client and activity.kind == "booking"
    assert activity.body == f"Booking {booking.record_locator} created: LHR→JFK {START.day} {START:%b}, 1 passenger"


def test_blank_rows_are_ignored_wherever_they_are(app: Flask, alice: Browser, alpha_client: int) -> None:
    data = {"status": "quoted", "currency": "EUR", "notes": ""}
    data |= passenger_row(0) | passenger_row(1, "Ann", "Lee") | passenger_row(2, "  ", " ")
    data |= segment_row(0) | filled_segment(1, day=0) | segment_row(2) | filled_segment(3, day=2)
    assert alice.post(f"/clients/{alpha_client}/bookings/new", data).status_code == 303
    booking = _only_booking(app)
    assert [p.first_name for p in booking.passengers] == ["Ann"]
    assert [(s.position, s.flight) for s in booking.segments] == [(1, "BA118"), (2, "BA120")]


def test_rows_added_in_the_browser_are_accepted(app: Flask, alice: Browser, alpha_client: int) -> None:
    """More rows than rendered (2 and 3): up to 9 passengers and 16 segments."""
    assert _create(alice, alpha_client, passengers=9, segments=16).status_code == 303
    booking = _only_booking(app)
    assert len(booking.passengers) == 9 and len(booking.segments) == 16
    assert [s.position for s in booking.segments] == list(range(1, 17))


def test_partial_rows_are_errors_on_that_row(app: Flask, alice: Browser, alpha_client: int) -> None:
    data = booking_form(passengers=1, segments=1)
    data |= passenger_row(1, "Ann", "")
    data |= segment_row(1, carrier="BA", origin="JFK")
    response = alice.post(f"/clients/{alpha_client}/bookings/new", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'aria-invalid="true"[^>]*name="passengers-1-last_name"', page)
    assert re.search(r'aria-invalid="true"[^>]*name="segments-1-flight_number"', page)
    assert not re.search(r'aria-invalid="true"[^>]*name="segments-1-carrier"', page)
    assert not re.search(r'aria-invalid="true"[^>]*name="passengers-0-', page)
    assert 'value="Ann"' in page  # what was typed stays
    assert _counts(app) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (filled_segment(0, carrier="B"), "Two letters or digits"),
        (filled_segment(0, carrier="B-"), "Two letters or digits"),
        (filled_segment(0, carrier="12"), "Two letters or digits"),
        (filled_segment(0, flight_number="12345"), "1 to 4 digits"),
        (filled_segment(0, flight_number="١٢"), "1 to 4 digits"),
        (filled_segment(0, origin="LH"), "three-letter airport"),
        (filled_segment(0, destination="J1K"), "three-letter airport"),
        (filled_segment(0, destination="lhr"), "Must differ from the origin"),
        (filled_segment(0, departure_date="2027-02-30"), "Not a valid date"),
        (filled_segment(0, fare="-1"), "Enter an amount"),
        (filled_segment(0, fare="100000"), "Enter an amount"),
        (filled_segment(0, fare="12.345"), "At most two decimals"),
        (filled_segment(0, fare="NaN"), "Enter an amount"),
        (filled_segment(0, fare="1e9"), "Enter an amount"),
        (filled_segment(0, fare="12,50"), "Enter an amount"),
        (filled_segment(1, day=-5), "Departs before the previous flight"),
        ({"currency": "EURO"}, "three-letter currency"),
        ({"notes": "x" * 2001}, "2000"),
        ({"status": "ticketed"}, "Not a valid choice"),
        (passenger_row(0, "A" * 81, "Lee"), "80"),
    ],
)
def test_invalid_input_is_422_with_message_and_nothing_written(
    app: Flask, alice: Browser, alpha_client: int, fields: dict[str, str], message: str
) -> None:
    data = booking_form(passengers=1, segments=2) | fields
    response = alice.post(f"/clients/{alpha_client}/bookings/new", data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _counts(app) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"passengers": 10}, "at most 9 passengers"),
        ({"segments": 17}, "at most 16 flight segments"),
        ({"passengers": 0}, "Add at least one passenger"),
        ({"segments": 0}, "Add at least one flight segment"),
    ],
)
def test_row_counts_are_enforced(
    app: Flask, alice: Browser, alpha_client: int, form: dict[str, int], message: str
) -> None:
    response = _create(alice, alpha_client, **form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _counts(app) == (0, 0, 0, 0, 0)


def test_flood_of_blank_rows_is_refused(app: Flask, alice: Browser, alpha_client: int) -> None:
    data = booking_form(passengers=1, segments=1)
    for i in range(2, 60):
        data |= passenger_row(i)
    response = alice.post(f"/clients/{alpha_client}/bookings/new", data)
    assert response.status_code == 422
    assert "Too many rows" in response.get_data(as_text=True)
    assert _counts(app) == (0, 0, 0, 0, 0)


def test_json_clients_get_field_errors_keyed_by_posted_name(alice: Browser, alpha_client: int) -> None:
    data = booking_form(passengers=1, segments=2) | filled_segment(1, day=-3)
    data |= segment_row(2) | filled_segment(3, carrier="?")
    response = alice.post(
        f"/clients/{alpha_client}/bookings/new", data, headers={"Accept": "application/json"}
    )
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert list(fields) == ["segments-3-carrier"]  # format errors first

    data["segments-3-carrier"] = "BA"
    data["segments-3-departure_date"] = (START.replace(year=START.year + 1)).isoformat()
    response = alice.post(
        f"/clients/{alpha_client}/bookings/new", data, headers={"Accept": "application/json"}
    )
    assert response.get_json()["error"]["fields"] == {
        "segments-1-departure_date": [f"Departs before the previous flight ({START:%d %b %Y})."]
    }


def _make_booking(app: Flask, client_id: int, status: str = "quoted") -> Booking:
    """A committed booking with its plain columns loaded (usable outside the app context)."""
    with app.app_context():
        booking = factories.make_booking(db.session, db.session.get(Client, client_id), status=status)
        db.session.refresh(booking)
        return booking


def test_booking_page_shows_actions_for_allowed_transitions(app: Flask, alice: Browser, alpha_client: int) -> None:
    booking = _make_booking(app, alpha_client, status="confirmed")
    page = alice.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert f"/bookings/{booking.id}/edit" in page
    assert 'value="ticketed"' in page and 'value="cancelled"' in page and 'value="held"' not in page
    assert re.search(r'<form[^>]*data-confirm="Cancel booking', page)
    assert f'<a href="/clients/{alpha_client}">Zoë Quinterro</a>' in page
    assert f'href="/clients/{alpha_client}">← Back to Zoë Quinterro' in page


def test_status_buttons_move_the_booking_along(app: Flask, alice: Browser, alpha_client: int) -> None:
    booking = _make_booking(app, alpha_client, status="quoted")
    url = f"/bookings/{booking.id}/status"
    assert alice.post(url, {"status": "confirm"}).status_code == 303
    assert alice.post(url, {"status": "ticketed", "version": "2"}).status_code == 303
    response = alice.post(url, {"status": "cancel"}, headers={"Accept": "application/json"})
    assert response.get_json()["booking"]["status"] == "cancelled"
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == "cancelled"
    assert _counts(app)[3:] == (3, 3)


@pytest.mark.parametrize(("start", "action"), [("cancelled", "confirm"), ("quoted", "ticket"), ("ticketed", "hold")])
def test_illegal_status_change_is_409_and_changes_nothing(
    app: Flask, alice: Browser, alpha_client: int, start: str, action: str
) -> None:
    booking = _make_booking(app, alpha_client, status=start)
    response = alice.post(f"/bookings/{booking.id}/status", {"status": action})
    assert response.status_code == 409
    assert f"is {start}; it cannot become" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == start
    assert _counts(app)[3:] == (0, 0)


def test_unknown_status_is_422(app: Flask, alice: Browser, alpha_client: int) -> None:
    booking = _make_booking(app, alpha_client)
    assert alice.post(f"/bookings/{booking.id}/status", {"status": "launch"}).status_code == 422


def test_edit_form_shows_existing_rows_plus_a_spare(app: Flask, alice: Browser, alpha_client: int) -> None:
    _create(alice, alpha_client, passengers=3, segments=4)
    booking = _only_booking(app)
    page = alice.get(f"/bookings/{booking.id}/edit").get_data(as_text=True)
    assert 'value="Pax2"' in page and 'name="passengers-3-first_name"' in page
    assert "passengers-4-" not in page
    assert 'name="segments-4-carrier"' in page and "segments-5-" not in page
    assert 'name="version" type="hidden" value="1"' in page
    assert 'value="420.50"' in page and f'value="{START.isoformat()}"' in page


def test_edit_saves_changes(app: Flask, alice: Browser, alpha_client: int) -> None:
    _create(alice, alpha_client, passengers=2, segments=2)
    booking = _only_booking(app)
    data = booking_form(passengers=1, segments=3, notes="Aisle please") | {"version": "1"}
    response = alice.post(f"/bookings/{booking.id}/edit", data)
    assert response.status_code == 303
    stored = _only_booking(app)
    assert (stored.version, stored.notes, stored.status) == (2, "Aisle please", "quoted")
    assert len(stored.passengers) == 1 and len(stored.segments) == 3
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert [a for a in actions if a.startswith("booking.")] == ["booking.create", "booking.update"]


def test_edit_with_stale_version_is_409_and_unchanged(app: Flask, alice: Browser, alpha_client: int) -> None:
    _create(alice, alpha_client, passengers=2, segments=2)
    booking = _only_booking(app)
    url = f"/bookings/{booking.id}/edit"
    assert alice.post(url, booking_form(notes="first") | {"version": "1"}).status_code == 303
    before = _counts(app)

    response = alice.post(url, booking_form(notes="second", passengers=1) | {"version": "1"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Someone else changed this booking" in page and "second" in page  # the input is kept
    stored = _only_booking(app)
    assert (stored.notes, stored.version, len(stored.passengers)) == ("first", 2, 2)
    assert _counts(app) == before


def test_edit_with_invalid_rows_is_422_and_unchanged(app: Flask, alice: Browser, alpha_client: int) -> None:
    _create(alice, alpha_client, passengers=1, segments=1)
    booking = _only_booking(app)
    before = _counts(app)
    data = booking_form(passengers=1, segments=1) | filled_segment(0, origin="JFK") | {"version": "1"}
    response = alice.post(f"/bookings/{booking.id}/edit", data)
    assert response.status_code == 422
    assert "Must differ from the origin" in response.get_data(as_text=True)
    assert _counts(app) == before and _only_booking(app).segments[0].origin == "LHR"


def _bob_requests(booking_id: int, client_id: int) -> list[tuple[str, str, dict[str, str] | None]]:
    return [
        ("GET", f"/clients/{client_id}/bookings/new", None),
        ("POST", f"/clients/{client_id}/bookings/new", booking_form()),
        ("POST", f"/clients/{client_id}/bookings/new", {"currency": "nonsense"}),
        ("GET", f"/bookings/{booking_id}", None),
        ("GET", f"/bookings/{booking_id}/edit", None),
        ("POST", f"/bookings/{booking_id}/edit", booking_form() | {"version": "1"}),
        ("POST", f"/bookings/{booking_id}/edit", {}),
        ("POST", f"/bookings/{booking_id}/status", {"status": "cancel"}),
        ("POST", f"/bookings/{booking_id}/status", {"status": "nonsense"}),
    ]


@pytest.mark.parametrize("request_index", range(len(_bob_requests(0, 0))))
def test_other_agency_gets_404_everywhere_and_nothing_is_written(
    app: Flask, as_user: Any, alpha_client: int, request_index: int
) -> None:
    booking = _make_booking(app, alpha_client, status="confirmed")
    before = _counts(app)
    method, url, data = _bob_requests(booking.id, alpha_client)[request_index]
    bob = as_user("bob.agent")
    response = bob.get(url) if method == "GET" else bob.post(url, data)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert booking.record_locator not in page and "Quinterro" not in page
    assert _counts(app) == before
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == "confirmed"


@pytest.mark.parametrize("url", ["/clients/1/bookings/new", "/bookings/1", "/bookings/1/edit"])
def test_pages_need_login(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
