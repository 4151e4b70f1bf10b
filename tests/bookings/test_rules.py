"""Pure booking rules: locators, status names, fares, trip summaries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from cms.bookings.locators import LOCATOR_ALPHABET, generate_locator, normalize_locator
from cms.bookings.rules import ALLOWED_TRANSITIONS, money_problem, parse_status
from cms.bookings.service import trip_summary
from cms.models import Booking, BookingStatus, Passenger, Segment


def test_locators_use_six_unambiguous_characters() -> None:
    assert not set("0O1I") & set(LOCATOR_ALPHABET)
    drawn = {generate_locator() for _ in range(200)}
    assert len(drawn) > 190
    assert all(len(x) == 6 and set(x) <= set(LOCATOR_ALPHABET) for x in drawn)


@pytest.mark.parametrize(("text", "expected"), [(" k7pq2m ", "K7PQ2M"), ("K7PQ2", None), ("K7PQ2O", None), ("", None)])
def test_normalize_locator(text: str, expected: str | None) -> None:
    assert normalize_locator(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("cancel", BookingStatus.CANCELLED), ("Confirmed", BookingStatus.CONFIRMED), ("ticket", BookingStatus.TICKETED),
     ("hold", BookingStatus.HELD), ("nope", None), ("", None)],
)
def test_parse_status_accepts_verbs_and_statuses(value: str, expected: BookingStatus | None) -> None:
    assert parse_status(value) is expected


def test_cancelled_is_final_and_every_other_status_can_cancel() -> None:
    assert ALLOWED_TRANSITIONS[BookingStatus.CANCELLED] == ()
    for status, targets in ALLOWED_TRANSITIONS.items():
        assert status is BookingStatus.CANCELLED or BookingStatus.CANCELLED in targets


@pytest.mark.parametrize(
    ("amount", "ok"),
    [("0", True), ("99999.99", True), ("12.50", True), ("12.500", True), ("100000", False), ("-0.01", False),
     ("12.345", False), ("NaN", False), ("Infinity", False), ("sNaN", False)],
)
def test_money_problem(amount: str, ok: bool) -> None:
    assert (money_problem(Decimal(amount)) is None) is ok


def test_trip_summary_chains_connected_flights_and_splits_open_jaws() -> None:
    booking = Booking(record_locator="K7PQ2M")
    booking.passengers = [Passenger(first_name="A", last_name="B", pax_type="ADT")]
    legs = [("LHR", "JFK", 12), ("JFK", "SFO", 13), ("LAX", "LHR", 20)]
    booking.segments = [
        Segment(origin=o, destination=d, departure_date=date(2027, 1, day), fare=Decimal("1")) for o, d, day in legs
    ]
    assert trip_summary(booking) == "LHR→JFK→SFO / LAX→LHR 12 Jan, 1 passenger"
