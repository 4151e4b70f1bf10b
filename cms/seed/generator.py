"""Deterministic demo rows: item i is drawn from its own `random.Random`, seeded from (kind, i).

Nothing here touches the database or the clock: the same index always yields the same row, no
matter how many other items were generated before or in which order. Dates are relative to a
`reference` date the caller passes (the fixed REFERENCE_DATE for bulk data).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Sequence

from cms.bookings.locators import LOCATOR_ALPHABET, LOCATOR_LENGTH
from cms.models import BookingStatus, Cabin, PassengerType, client_search_keys, normalize_text
from cms.seed import vocabulary as words

REFERENCE_DATE = date(2026, 11, 1)

# The alphabet has 32 symbols, so a locator is exactly 30 bits: a bijection on 30-bit numbers
# therefore gives every booking number its own locator.
_LOCATOR_BITS = 5 * LOCATOR_LENGTH
_LOCATOR_MASK = (1 << _LOCATOR_BITS) - 1

MAX_BOOKINGS_PER_CLIENT = 8
# Bulk locator numbers are client_index * MAX_BOOKINGS_PER_CLIENT + j, below this bound;
# the demo series uses the numbers above it, so the two can never collide.
_SERIES_SPAN = 1 << (_LOCATOR_BITS - 1)
MAX_CLIENTS = _SERIES_SPAN // MAX_BOOKINGS_PER_CLIENT - 1

_AGENT = 1
_HUBS = {"BA": "LHR", "LH": "FRA", "AF": "CDG", "KL": "AMS", "IB": "MAD", "AA": "JFK",
         "UA": "EWR", "DL": "ATL", "EK": "DXB", "QR": "DOH"}
_CABIN_FACTOR = {Cabin.ECONOMY: 1.0, Cabin.PREMIUM: 1.8, Cabin.BUSINESS: 4.0, Cabin.FIRST: 7.0}
_AIRPORT_CODES = tuple(words.AIRPORTS)
_DEPARTED_STATUSES = (BookingStatus.TICKETED, BookingStatus.CANCELLED, BookingStatus.CONFIRMED)
_UPCOMING_STATUSES = (BookingStatus.CONFIRMED, BookingStatus.TICKETED, BookingStatus.QUOTED,
                      BookingStatus.HELD, BookingStatus.CANCELLED)


@dataclass(frozen=True)
class Series:
    """One family of generated clients and bookings; each has its own seeds and locator range."""

    client_kind: int
    count_kind: int
    booking_kind: int
    locator_base: int
    departure_window: tuple[int, int]


BULK = Series(2, 3, 4, 0, (-60, 300))
DEMO = Series(5, 6, 7, _SERIES_SPAN, (-20, 45))


@dataclass
class BookingDraft:
    """A booking's row plus its passengers' and segments' rows (without booking_id yet)."""

    booking: dict[str, Any]
    passengers: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)


def rng_for(kind: int, index: int) -> random.Random:
    """The random stream of item `index` of `kind`, independent of every other item."""
    return random.Random((kind << 40) | index)


def _mix(n: int) -> int:
    """A bijection on 30-bit integers that scatters consecutive numbers."""
    n = (n * 0x2F0F1A3B) & _LOCATOR_MASK
    n ^= n >> 15
    n = (n * 0x1C6EF35D) & _LOCATOR_MASK
    n ^= n >> 13
    return n


def locator(number: int) -> str:
    """The record locator of booking `number`: distinct numbers give distinct locators."""
    if not 0 <= number <= _LOCATOR_MASK:
        raise ValueError(f"locator number out of range: {number}")
    n = _mix(number)
    chars = []
    for _ in range(LOCATOR_LENGTH):
        chars.append(LOCATOR_ALPHABET[n & 31])
        n >>= 5
    return "".join(reversed(chars))


def agency_name(index: int) -> str:
    return f"Agency {index:03d}"


def agent_username(index: int) -> str:
    return f"agent{index:05d}"


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)


def _aware(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(7, 19), rng.randint(0, 59)), timezone.utc)


def agent_row(index: int, agency_id: int, password_hash: str) -> dict[str, Any]:
    """Row for seeded agent `index` (username agentNNNNN)."""
    first, last = _person(rng_for(_AGENT, index))
    username = agent_username(index)
    return {
        "agency_id": agency_id,
        "username": username,
        "display_name": f"{first} {last}",
        "email": f"{username}@agencies.example",
        "password_hash": password_hash,
    }


def _phone(rng: random.Random) -> str:
    country, prefixes, digits = rng.choice(words.PHONE_PLANS)
    number = "".join(str(rng.randint(0, 9)) for _ in range(digits))
    return f"+{country} {rng.choice(prefixes)}{number}"


def _email(first: str, last: str, index: int, rng: random.Random) -> str:
    f, l = normalize_text(first).replace(" ", ""), normalize_text(last).replace(" ", "")
    local = rng.choice((f"{f}.{l}{index}", f"{f[0]}{l}{index}", f"{l}.{f}{index}", f"{f}_{l}{index}"))
    return f"{local}@{rng.choice(words.EMAIL_DOMAINS)}"


def _preferences(rng: random.Random) -> dict[str, Any]:
    prefs: dict[str, Any] = {"home_airport": rng.choice(words.HOME_AIRPORTS)}
    if rng.random() < 0.7:
        prefs["seat"] = rng.choice(words.SEATS)
    if rng.random() < 0.5:
        prefs["meal"] = rng.choice(words.MEALS)
    if rng.random() < 0.4:
        carrier = rng.choice(words.NETWORK_CARRIERS)
        prefs["frequent_flyer"] = f"{carrier} {rng.randint(10_000_000, 99_999_999)}"
    return prefs


def client_row(index: int, agency_id: int, series: Series, reference: date) -> dict[str, Any]:
    """Row for client `index` of `series`; its e-mail embeds the index, so it identifies the client."""
    rng = rng_for(series.client_kind, index)
    first, last = _person(rng)
    email = _email(first, last, index, rng)
    phone = _phone(rng) if rng.random() < 0.9 else None
    notes = rng.choice(words.CLIENT_NOTES) if rng.random() < 0.35 else ""
    created = _aware(reference - timedelta(days=rng.randint(270, 1500)), rng)
    row = {
        "agency_id": agency_id,
        "first_name": first,
        "last_name": last,
        "email": email,
        "phone": phone,
        "notes": notes,
        "preferences": _preferences(rng),
        "created_by_id": None,
        "created_at": created,
        "updated_at": created,
    }
    row.update(client_search_keys(first, last, email, phone))
    return row


def booking_count(index: int, series: Series, mean: float) -> int:
    """How many bookings client `index` has: Poisson-distributed around `mean`, capped."""
    rng = rng_for(series.count_kind, index)
    # Knuth's method; the per-client stream keeps the count stable across runs.
    limit, product, count = pow(2.718281828459045, -mean), rng.random(), 0
    while product > limit and count < MAX_BOOKINGS_PER_CLIENT:
        count += 1
        product *= rng.random()
    return count


def booking_number(client_index: int, position: int, series: Series) -> int:
    """The locator number of the `position`-th (0-based) booking of client `client_index`."""
    return series.locator_base + client_index * MAX_BOOKINGS_PER_CLIENT + position


def _status(rng: random.Random, departed: bool) -> str:
    if departed:
        return rng.choices(_DEPARTED_STATUSES, (70, 15, 15))[0].value
    return rng.choices(_UPCOMING_STATUSES, (38, 30, 14, 8, 10))[0].value


def _route(rng: random.Random, home: str) -> list[tuple[str, str, int]]:
    """Legs as (origin, destination, days after the first departure)."""
    destination = rng.choice([code for code in _AIRPORT_CODES if code != home])
    stay = rng.randint(2, 21)
    shape = rng.choices((1, 2, 3, 4), (20, 50, 10, 20))[0]
    if shape == 1:
        return [(home, destination, 0)]
    if shape == 2:
        return [(home, destination, 0), (destination, home, stay)]
    if shape == 3:
        onward = rng.choice([c for c in _AIRPORT_CODES if c not in (home, destination)])
        hop = rng.randint(2, max(2, stay - 1))
        return [(home, destination, 0), (destination, onward, hop), (onward, home, hop + stay)]
    hub = rng.choice([h for h in _HUBS.values() if h not in (home, destination)])
    return [(home, hub, 0), (hub, destination, 0), (destination, hub, stay), (hub, home, stay)]


def _carrier(rng: random.Random, legs: list[tuple[str, str, int]]) -> str:
    if len(legs) == 4:
        hub = legs[0][1]
        return next(code for code, airport in _HUBS.items() if airport == hub)
    short_haul = all(words.AIRPORTS[o] == words.AIRPORTS[d] == "EU" for o, d, _ in legs)
    if short_haul and rng.random() < 0.35:
        return rng.choice(words.LOW_COST_CARRIERS)
    return rng.choice(words.NETWORK_CARRIERS)


def _fare(rng: random.Random, origin: str, destination: str, cabin: Cabin) -> Decimal:
    long_haul = words.AIRPORTS[origin] != words.AIRPORTS[destination]
    base = rng.uniform(350, 1400) if long_haul else rng.uniform(40, 400)
    return Decimal(f"{base * _CABIN_FACTOR[cabin]:.2f}")


def _passengers(rng: random.Random, first: str, last: str) -> list[dict[str, Any]]:
    rows = [{"position": 1, "first_name": first, "last_name": last,
             "pax_type": PassengerType.ADULT.value}]
    for position in range(2, rng.choices((1, 2, 3), (60, 30, 10))[0] + 1):
        companion_last = last if rng.random() < 0.7 else rng.choice(words.LAST_NAMES)
        pax_type = PassengerType.CHILD if position == 3 and rng.random() < 0.4 else PassengerType.ADULT
        rows.append({"position": position, "first_name": rng.choice(words.FIRST_NAMES),
                     "last_name": companion_last, "pax_type": pax_type.value})
    return rows


def booking_draft(
    client: dict[str, Any],
    number: int,
    series: Series,
    reference: date,
    agent_ids: Sequence[int],
) -> BookingDraft:
    """Booking number `number` of generated `client`, with 1-3 passengers and 1-4 segments."""
    rng = rng_for(series.booking_kind, number)
    low, high = series.departure_window
    first_departure = reference + timedelta(days=rng.randint(low, high))
    legs = _route(rng, client["preferences"]["home_airport"])
    carrier = _carrier(rng, legs)
    if carrier in words.LOW_COST_CARRIERS:
        cabin = Cabin.ECONOMY
    else:
        cabin = rng.choices(tuple(Cabin), (70, 12, 14, 4))[0]
    created = _aware(min(first_departure - timedelta(days=rng.randint(3, 200)),
                         reference - timedelta(days=rng.randint(0, 30))), rng)
    booking = {
        "agency_id": client["agency_id"],
        "agent_id": rng.choice(agent_ids) if agent_ids else None,
        "record_locator": locator(number),
        "status": _status(rng, first_departure < reference),
        "currency": rng.choices(("EUR", "GBP", "USD"), (65, 25, 10))[0],
        "notes": rng.choice(words.BOOKING_NOTES) if rng.random() < 0.2 else "",
        "created_at": created,
        "updated_at": created,
    }
    segments = [
        {
            "position": position,
            "carrier": carrier,
            "flight_number": str(rng.randint(1, 9999)),
            "origin": origin,
            "destination": destination,
            "departure_date": first_departure + timedelta(days=offset),
            "cabin": cabin.value,
            "fare": _fare(rng, origin, destination, cabin),
        }
        for position, (origin, destination, offset) in enumerate(legs, start=1)
    ]
    return BookingDraft(booking, _passengers(rng, client["first_name"], client["last_name"]), segments)
