"""Builders for booking input: service dataclasses and posted form fields."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from cms.bookings.rules import BookingInput, PassengerInput, SegmentInput

DAY = timedelta(days=1)
START = date.today() + timedelta(days=30)


def booking_input(passengers: int = 2, segments: int = 2, **fields: Any) -> BookingInput:
    """A valid booking: `segments` flights hopping LHR→JFK→LHR→..., one day apart, 100.00 each."""
    airports = ["LHR", "JFK"]
    values: dict[str, Any] = {
        "passengers": [PassengerInput(f"Pax{i}", "Traveller") for i in range(passengers)],
        "segments": [
            SegmentInput(
                carrier="BA",
                flight_number=str(100 + i),
                origin=airports[i % 2],
                destination=airports[(i + 1) % 2],
                departure_date=START + i * DAY,
                cabin="Y",
                fare=Decimal("100.00"),
            )
            for i in range(segments)
        ],
    }
    values.update(fields)
    return BookingInput(**values)


def passenger_row(index: int, first: str = "", last: str = "", pax_type: str = "ADT") -> dict[str, str]:
    prefix = f"passengers-{index}-"
    return {prefix + "first_name": first, prefix + "last_name": last, prefix + "pax_type": pax_type}


def segment_row(
    index: int,
    carrier: str = "",
    flight_number: str = "",
    origin: str = "",
    destination: str = "",
    departure_date: str = "",
    cabin: str = "Y",
    fare: str = "",
) -> dict[str, str]:
    prefix = f"segments-{index}-"
    return {
        prefix + "carrier": carrier,
        prefix + "flight_number": flight_number,
        prefix + "origin": origin,
        prefix + "destination": destination,
        prefix + "departure_date": departure_date,
        prefix + "cabin": cabin,
        prefix + "fare": fare,
    }


def filled_segment(index: int, day: int = 0, **overrides: str) -> dict[str, str]:
    """A complete segment row LHR→JFK (or back, for odd rows) departing `day` days after START."""
    values = {
        "carrier": "BA",
        "flight_number": str(117 + index),
        "origin": "LHR" if index % 2 == 0 else "JFK",
        "destination": "JFK" if index % 2 == 0 else "LHR",
        "departure_date": (START + day * DAY).isoformat(),
        "cabin": "Y",
        "fare": "420.50",
    }
    values.update(overrides)
    return segment_row(index, **values)


def booking_form(passengers: int = 2, segments: int = 2, **fields: str) -> dict[str, str]:
    """Posted fields as the rendered form sends them: filled rows, then one blank row of each."""
    data: dict[str, str] = {"status": "quoted", "currency": "EUR", "notes": ""}
    for i in range(passengers):
        data.update(passenger_row(i, f"Pax{i}", "Traveller"))
    data.update(passenger_row(passengers))
    for i in range(segments):
        data.update(filled_segment(i, day=i))
    data.update(segment_row(segments))
    data.update(fields)
    return data
