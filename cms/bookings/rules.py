"""What a valid booking is: its input shape, field formats, row limits and status transitions.

Shared by the form (per-field formats) and the service (the whole booking), so each rule is
written once. Nothing here touches the database or Flask.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from cms.models import BookingStatus, Cabin, PassengerType

MAX_PASSENGERS = 9
MAX_SEGMENTS = 16
NAME_MAX = 80
NOTES_MAX = 2000
FARE_LIMIT = Decimal("100000")
CENT = Decimal("0.01")

# [A-Z0-9] rather than \w or \d: those also match non-ASCII letters and digits.
CARRIER_PATTERN = re.compile(r"^(?=.*[A-Z])[A-Z0-9]{2}$")
FLIGHT_NUMBER_PATTERN = re.compile(r"^[0-9]{1,4}$")
AIRPORT_PATTERN = re.compile(r"^[A-Z]{3}$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")

INITIAL_STATUSES = (BookingStatus.QUOTED, BookingStatus.HELD, BookingStatus.CONFIRMED)

ALLOWED_TRANSITIONS: dict[BookingStatus, tuple[BookingStatus, ...]] = {
    BookingStatus.QUOTED: (BookingStatus.HELD, BookingStatus.CONFIRMED, BookingStatus.CANCELLED),
    BookingStatus.HELD: (BookingStatus.CONFIRMED, BookingStatus.CANCELLED),
    BookingStatus.CONFIRMED: (BookingStatus.TICKETED, BookingStatus.CANCELLED),
    BookingStatus.TICKETED: (BookingStatus.CANCELLED,),
    BookingStatus.CANCELLED: (),
}

# The verbs buttons send, with the status each leads to; status values are accepted as well.
STATUS_ACTIONS: dict[str, BookingStatus] = {
    "hold": BookingStatus.HELD,
    "confirm": BookingStatus.CONFIRMED,
    "ticket": BookingStatus.TICKETED,
    "cancel": BookingStatus.CANCELLED,
}
ACTION_LABELS: dict[BookingStatus, str] = {
    BookingStatus.HELD: "Hold",
    BookingStatus.CONFIRMED: "Confirm",
    BookingStatus.TICKETED: "Ticket",
    BookingStatus.CANCELLED: "Cancel booking",
}

MONEY_MESSAGE = "Enter an amount from 0 to 99999.99, like 420.00."
CARRIER_MESSAGE = "Two letters or digits, like BA or U2."
FLIGHT_NUMBER_MESSAGE = "1 to 4 digits."
AIRPORT_MESSAGE = "A three-letter airport code, like LHR."
CURRENCY_MESSAGE = "A three-letter currency code, like EUR."
SAME_AIRPORT_MESSAGE = "Must differ from the origin."


@dataclass(frozen=True)
class PassengerInput:
    first_name: str
    last_name: str
    pax_type: str = PassengerType.ADULT.value


@dataclass(frozen=True)
class SegmentInput:
    carrier: str
    flight_number: str
    origin: str
    destination: str
    departure_date: date
    cabin: str = Cabin.ECONOMY.value
    fare: Decimal = Decimal("0")


@dataclass(frozen=True)
class BookingInput:
    """A booking's editable content; rows in the order they are stored."""

    passengers: list[PassengerInput] = field(default_factory=list)
    segments: list[SegmentInput] = field(default_factory=list)
    currency: str = "EUR"
    notes: str = ""


def parse_status(value: str) -> BookingStatus | None:
    """Return the status named by a verb ("cancel") or a status value ("cancelled"), else None."""
    value = (value or "").strip().lower()
    if value in STATUS_ACTIONS:
        return STATUS_ACTIONS[value]
    try:
        return BookingStatus(value)
    except ValueError:
        return None


def money_problem(value: Decimal | None) -> str | None:
    """Return why `value` is not a fare (0 <= fare < 100,000, at most two decimals), else None."""
    if value is None or not value.is_finite() or value < 0 or value >= FARE_LIMIT:
        return MONEY_MESSAGE
    if value != value.quantize(CENT):
        return "At most two decimals."
    return None


def booking_problems(data: BookingInput) -> dict[str, list[str]]:
    """Return every problem with `data`, keyed like form fields ("segments-2-origin"); {} if valid."""
    problems: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        problems.setdefault(key, []).append(message)

    if not CURRENCY_PATTERN.match(data.currency):
        add("currency", CURRENCY_MESSAGE)
    if len(data.notes) > NOTES_MAX:
        add("notes", f"At most {NOTES_MAX} characters.")
    _count(add, "passengers", len(data.passengers), MAX_PASSENGERS, "passenger")
    _count(add, "segments", len(data.segments), MAX_SEGMENTS, "flight segment")

    pax_types = {t.value for t in PassengerType}
    for i, pax in enumerate(data.passengers):
        for name in ("first_name", "last_name"):
            value = getattr(pax, name)
            if not value.strip():
                add(f"passengers-{i}-{name}", "Required.")
            elif len(value) > NAME_MAX:
                add(f"passengers-{i}-{name}", f"At most {NAME_MAX} characters.")
        if pax.pax_type not in pax_types:
            add(f"passengers-{i}-pax_type", "Choose adult, child or infant.")

    cabins = {c.value for c in Cabin}
    previous: SegmentInput | None = None
    for i, seg in enumerate(data.segments):
        key = f"segments-{i}-"
        if not CARRIER_PATTERN.match(seg.carrier):
            add(key + "carrier", CARRIER_MESSAGE)
        if not FLIGHT_NUMBER_PATTERN.match(seg.flight_number):
            add(key + "flight_number", FLIGHT_NUMBER_MESSAGE)
        for name in ("origin", "destination"):
            if not AIRPORT_PATTERN.match(getattr(seg, name)):
                add(key + name, AIRPORT_MESSAGE)
        if seg.origin == seg.destination:
            add(key + "destination", SAME_AIRPORT_MESSAGE)
        if seg.cabin not in cabins:
            add(key + "cabin", "Choose a cabin.")
        problem = money_problem(seg.fare)
        if problem:
            add(key + "fare", problem)
        if previous is not None and seg.departure_date < previous.departure_date:
            add(
                key + "departure_date",
                f"Departs before the previous flight ({previous.departure_date:%d %b %Y}).",
            )
        previous = seg
    return problems


def _count(add: Callable[[str, str], None], key: str, count: int, limit: int, noun: str) -> None:
    if count == 0:
        add(key, f"Add at least one {noun}.")
    elif count > limit:
        add(key, f"A booking has at most {limit} {noun}s; this one has {count}.")
