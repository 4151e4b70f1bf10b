"""Flight inventory for the terminal: search, and the deterministic demo schedule `flask seed` loads."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.models import Flight

MAX_RESULTS = 12
AIRPORTS = ("JFK", "LHR", "CDG", "FRA", "AMS", "MAD", "FCO", "DXB", "SIN", "HND", "SYD", "LAX",
            "BOS", "ORD", "MIA", "ZRH")
CARRIERS = ("BA", "AF", "LH", "KL", "IB", "AZ", "EK", "SQ", "NH", "QF", "AA", "UA", "DL", "LX")
CABINS = ("F", "C", "W", "Y")


def search_flights(session: Session, origin: str, destination: str, day: date,
                   cabin: str | None = None) -> list[dict[str, Any]]:
    """Flights on the route that day, by departure time; with `cabin`, only those with seats."""
    rows = session.scalars(select(Flight).where(
        Flight.origin == origin, Flight.destination == destination, Flight.departure_date == day,
    ).order_by(Flight.departs, Flight.carrier).limit(MAX_RESULTS * 2))
    flights = [{"carrier": f.carrier, "flight_number": f.flight_number, "origin": f.origin,
                "destination": f.destination, "date": f.departure_date.isoformat(),
                "departs": f.departs, "arrives": f.arrives, "seats": dict(f.seats),
                "fares": dict(f.fares)} for f in rows]
    if cabin:
        flights = [f for f in flights if f["seats"].get(cabin, 0) > 0]
    return flights[:MAX_RESULTS]


def demo_schedule(start: date, days: int, seed: int = 10) -> Iterator[Flight]:
    """A repeatable schedule: every ordered pair of AIRPORTS, 2-4 flights a day, for `days` days."""
    rng = random.Random(seed)
    routes = [(a, b) for a in AIRPORTS for b in AIRPORTS if a != b]
    plans = []
    for origin, destination in routes:
        for slot in range(rng.randint(2, 4)):
            carrier = rng.choice(CARRIERS)
            hour = 6 + slot * 4 + rng.randint(0, 2)
            duration = rng.randint(90, 900)
            plans.append((origin, destination, carrier, str(rng.randint(1, 9899)), hour,
                          rng.choice((0, 15, 30, 45)), duration, rng.randint(150, 900)))
    for offset in range(days):
        day = start + timedelta(days=offset)
        for origin, destination, carrier, number, hour, minute, duration, base in plans:
            arrive = (hour * 60 + minute + duration) % (24 * 60)
            seats = {"F": rng.choice((0, 0, 2, 4)), "C": rng.choice((0, 2, 4, 9)),
                     "W": rng.choice((0, 4, 9, 9)), "Y": rng.choice((0, 9, 9, 9))}
            fares = {"F": base * 8.0, "C": base * 4.0, "W": base * 1.6, "Y": float(base)}
            yield Flight(carrier=carrier, flight_number=number, origin=origin,
                         destination=destination, departure_date=day,
                         departs=f"{hour:02d}:{minute:02d}", arrives=f"{arrive // 60:02d}:{arrive % 60:02d}",
                         seats=seats, fares=fares)
