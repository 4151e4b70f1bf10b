"""Factories for test data: plain ORM objects with sensible defaults, committed."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from cms.auth.passwords import Passwords
from cms.models import Agency, Booking, Client, Passenger, Role, Segment, User

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)
_passwords = Passwords(fast=True)
_hash = _passwords.hash(PASSWORD)


def make_agency(session: Session, name: str | None = None, **fields: Any) -> Agency:
    agency = Agency(name=name or f"Agency {next(_counter)}", **fields)
    session.add(agency)
    session.commit()
    return agency


def make_user(
    session: Session,
    agency: Agency,
    username: str | None = None,
    role: Role = Role.AGENT,
    password: str | None = None,
    **fields: Any,
) -> User:
    username = (username or f"user{next(_counter)}").lower()
    user = User(
        agency_id=agency.id,
        username=username,
        display_name=fields.pop("display_name", username.replace(".", " ").title()),
        role=role,
        password_hash=_passwords.hash(password) if password else _hash,
        **fields,
    )
    session.add(user)
    session.commit()
    return user


def make_client(session: Session, agency: Agency, **fields: Any) -> Client:
    n = next(_counter)
    values: dict[str, Any] = {
        "first_name": f"Client{n}",
        "last_name": "Traveller",
        "email": f"client{n}@example.com",
        "phone": f"+44 20 7946 {n:04d}",
        "preferences": {},
    }
    values.update(fields)
    client = Client(agency_id=agency.id, **values)
    session.add(client)
    session.commit()
    return client


def make_booking(
    session: Session,
    client: Client,
    agent: User | None = None,
    locator: str | None = None,
    departure: date | None = None,
    status: str = "confirmed",
) -> Booking:
    n = next(_counter)
    booking = Booking(
        agency_id=client.agency_id,
        client_id=client.id,
        agent_id=agent.id if agent else None,
        record_locator=locator or f"T{n:05d}"[-6:],
        status=status,
        currency="EUR",
    )
    booking.passengers.append(
        Passenger(position=1, first_name=client.first_name, last_name=client.last_name, pax_type="ADT")
    )
    booking.segments.append(
        Segment(
            position=1,
            carrier="BA",
            flight_number="117",
            origin="LHR",
            destination="JFK",
            departure_date=departure or date.today() + timedelta(days=10),
            cabin="Y",
            fare=Decimal("420.00"),
        )
    )
    session.add(booking)
    session.commit()
    return booking
