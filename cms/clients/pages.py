"""What the agent pages show, as plain read models: the dashboard and the client page.

Opening a client also remembers it in the user's "recent clients".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from cms.audit import Actor
from cms.clients.service import get_client
from cms.models import Activity, Booking, BookingStatus, Client, RecentClient, Segment, utcnow

logger = logging.getLogger(__name__)

RECENT_LIMIT = 10
DEPARTURES_LIMIT = 10
TIMELINE_LIMIT = 50


@dataclass(frozen=True)
class RecentEntry:
    client: Client
    viewed_at: datetime


@dataclass(frozen=True)
class Departure:
    """One upcoming flight of one of the agent's bookings."""

    segment: Segment
    booking: Booking
    client: Client


@dataclass(frozen=True)
class Dashboard:
    recent: list[RecentEntry]
    departures: list[Departure]


@dataclass(frozen=True)
class BookingRow:
    booking: Booking
    route: str
    first_departure: date | None
    total_fare: Decimal


@dataclass(frozen=True)
class ClientPage:
    """The client with their bookings (newest first) and the newest timeline entries."""

    client: Client
    bookings: list[BookingRow]
    timeline: list[Activity]


def route_summary(segments: list[Segment]) -> str:
    """"LHR → JFK → LHR" for connected flights; unconnected legs are separated by " · "."""
    legs: list[list[str]] = []
    for segment in segments:
        if legs and legs[-1][-1] == segment.origin:
            legs[-1].append(segment.destination)
        else:
            legs.append([segment.origin, segment.destination])
    return " · ".join(" → ".join(leg) for leg in legs)


def dashboard(session: Session, actor: Actor, today: date) -> Dashboard:
    """The actor's recently opened clients and their next departures from `today` on."""
    recent = session.execute(
        select(Client, RecentClient.viewed_at)
        .join(RecentClient, RecentClient.client_id == Client.id)
        .where(RecentClient.user_id == actor.user_id, Client.agency_id == actor.agency_id)
        .order_by(RecentClient.viewed_at.desc(), RecentClient.client_id.desc())
        .limit(RECENT_LIMIT)
    )
    departures = session.execute(
        select(Segment, Booking, Client)
        .join(Booking, Segment.booking_id == Booking.id)
        .join(Client, Booking.client_id == Client.id)
        .where(
            Booking.agent_id == actor.user_id,
            Booking.agency_id == actor.agency_id,
            Booking.status != BookingStatus.CANCELLED.value,
            Segment.departure_date >= today,
        )
        .order_by(Segment.departure_date, Booking.id, Segment.position)
        .limit(DEPARTURES_LIMIT)
    )
    return Dashboard(
        recent=[RecentEntry(client, viewed_at) for client, viewed_at in recent],
        departures=[Departure(segment, booking, client) for segment, booking, client in departures],
    )


def client_page(session: Session, agency_id: int | None, client_id: int) -> ClientPage:
    """Return the client page's data; raises NotFound for another agency's or an unknown client."""
    client = get_client(session, agency_id, client_id)
    bookings = session.scalars(
        select(Booking)
        .where(Booking.client_id == client.id, Booking.agency_id == agency_id)
        .options(selectinload(Booking.segments))
        .order_by(Booking.created_at.desc(), Booking.id.desc())
    )
    timeline = session.scalars(
        select(Activity)
        .where(Activity.client_id == client.id, Activity.agency_id == agency_id)
        .options(selectinload(Activity.user))
        .order_by(Activity.created_at.desc(), Activity.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    rows = [
        BookingRow(b, route_summary(b.segments), b.first_departure, b.total_fare) for b in bookings
    ]
    return ClientPage(client, rows, list(timeline))


def open_client(session: Session, actor: Actor, client_id: int) -> ClientPage:
    """Return the client page's data and remember the visit in the actor's recent clients.

    Raises NotFound (nothing is written then).
    """
    client = get_client(session, actor.agency_id, client_id)
    if actor.user_id is not None:
        # Before loading the page: the commit would expire everything loaded so far.
        remember_visit(session, actor.user_id, client.id)
    return client_page(session, actor.agency_id, client_id)


def remember_visit(session: Session, user_id: int, client_id: int) -> None:
    """Upsert the (user, client) recent-clients row with the current time and commit."""
    now = utcnow()
    row = session.get(RecentClient, (user_id, client_id))
    if row is None:
        session.add(RecentClient(user_id=user_id, client_id=client_id, viewed_at=now))
    else:
        row.viewed_at = now
    try:
        session.commit()
    except IntegrityError:
        # Another request of the same user inserted the row first: theirs is as fresh as ours.
        session.rollback()
        logger.debug("recent client %s/%s inserted concurrently", user_id, client_id)
