"""Client search: one query string matched against names, email, phone and record locators.

Every test is a range on one indexed key column, `key >= prefix AND key < prefix_upper`, so each
arm is served by one of the (agency_id, key) indexes; the key columns compare bytewise ("C"
collation on PostgreSQL, BINARY on SQLite), which makes a prefix exactly such a range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from cms.errors import DomainError
from cms.paging import PageMath
from cms.models import (
    Activity,
    Booking,
    BookingStatus,
    Client,
    Segment,
    normalize_email,
    normalize_phone,
    normalize_text,
)

QUERY_MAX = 100
PER_PAGE = 25
#: The list's orders: by name (the default), by latest activity, by next departure.
SORTS = ("name", "activity", "departure")
#: "Departing within N days" filters at most a year ahead.
MAX_DEPARTING_DAYS = 366
PHONE_MIN_DIGITS = 3
_LOCATOR_LIKE = re.compile(r"^[A-Za-z0-9]{6}$")
_SURROGATES = range(0xD800, 0xE000)


class SearchRejected(DomainError):
    """The search text cannot be used (too long); answered with 400."""

    status = 400
    code = "bad_search"
    title = "Search not possible"


@dataclass(frozen=True)
class ClientRow:
    """One search result: the client plus their booking count and next departure."""

    client: Client
    bookings: int
    next_departure: date | None


@dataclass(frozen=True)
class SearchPage(PageMath):
    """One page of results (`page` is clamped to the last page) for the query `query`."""

    query: str
    rows: list[ClientRow]
    page: int
    per_page: int
    total: int
    sort: str = "name"
    departing: int | None = None


def prefix_upper(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix` (bytewise order).

    The last character is incremented; past the top of Unicode it is dropped and the one before
    is incremented instead. "" (no upper bound) is returned only for an all-maximal prefix.
    """
    while prefix:
        code = ord(prefix[-1]) + 1
        if code in _SURROGATES:
            code = _SURROGATES.stop
        if code <= 0x10FFFF:
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return ""


def _starts_with(column: InstrumentedAttribute[Any], prefix: str) -> ColumnElement[bool]:
    upper = prefix_upper(prefix)
    condition = column >= prefix
    return and_(condition, column < upper) if upper else condition


def match_condition(agency_id: int | None, query: str) -> ColumnElement[bool] | None:
    """The WHERE clause for `query` within the agency; None when nothing in it is searchable.

    Each arm carries agency_id so PostgreSQL can answer it from one composite index
    (a BitmapOr of index scans, never a scan of the whole table).
    """
    text = query.strip()
    arms: list[ColumnElement[bool]] = []
    name = normalize_text(text)
    if name:
        arms.append(_starts_with(Client.first_last_key, name))
        arms.append(_starts_with(Client.last_first_key, name))
    email = normalize_email(text)
    if email and not any(c.isspace() for c in email):
        arms.append(_starts_with(Client.email_key, email))
    digits = normalize_phone(text)
    if digits and len(digits) >= PHONE_MIN_DIGITS:
        arms.append(_starts_with(Client.phone_key, digits))
    if _LOCATOR_LIKE.match(text):
        # Locators are stored in upper case; record_locator is unique, so this is one value.
        booked_client = (
            select(Booking.client_id)
            .where(Booking.record_locator == text.upper(), Booking.agency_id == agency_id)
            .scalar_subquery()
        )
        arms.append(Client.id == booked_client)
    if not arms:
        return None
    return or_(*(and_(Client.agency_id == agency_id, arm) for arm in arms))


def _next_departure(today: date) -> Any:
    """Correlated: the client's next departure on a booking that is not cancelled."""
    return (select(func.min(Segment.departure_date))
            .join(Booking, Booking.id == Segment.booking_id)
            .where(Booking.client_id == Client.id, Booking.status != BookingStatus.CANCELLED.value,
                   Segment.departure_date >= today)
            .correlate(Client).scalar_subquery())


def search_statement(agency_id: int | None, query: str, sort: str = "name",
                     departing: int | None = None,
                     today: date | None = None) -> Select[Client] | None:
    """The ordered SELECT for `query` (all the agency's clients for a blank one), or None.

    `sort`: "name", "activity" (latest timeline entry first) or "departure" (soonest first;
    clients with none last). `departing`: only clients with a departure in the next N days."""
    if not query.strip():
        condition: ColumnElement[bool] | None = Client.agency_id == agency_id
    else:
        condition = match_condition(agency_id, query)
    if condition is None:
        return None
    stmt = select(Client).where(condition)
    if departing is not None or sort == "departure":
        day = today or date.today()
        upcoming = _next_departure(day)
        if departing is not None:
            stmt = stmt.where(upcoming <= date.fromordinal(day.toordinal() + departing))
        if sort == "departure":
            return stmt.order_by(upcoming.is_(None), upcoming, Client.last_first_key, Client.id)
    if sort == "activity":
        latest = (select(func.max(Activity.created_at)).where(Activity.client_id == Client.id)
                  .correlate(Client).scalar_subquery())
        return stmt.order_by(latest.is_(None), latest.desc(), Client.last_first_key, Client.id)
    return stmt.order_by(Client.last_first_key, Client.id)


def search_clients(
    session: Session,
    agency_id: int | None,
    query: str,
    page: int,
    today: date,
    per_page: int = PER_PAGE,
    sort: str = "name",
    departing: int | None = None,
) -> SearchPage:
    """Return page `page` of the agency's clients matching `query`, in `sort` order, only
    those departing within `departing` days when given.

    Raises SearchRejected when the query is longer than QUERY_MAX characters, the sort is
    unknown, or `departing` is not 0 to MAX_DEPARTING_DAYS.
    """
    if len(query) > QUERY_MAX:
        raise SearchRejected(f"A search can have at most {QUERY_MAX} characters.")
    if sort not in SORTS:
        raise SearchRejected(f"Sort by {', '.join(SORTS)}.")
    if departing is not None and not 0 <= departing <= MAX_DEPARTING_DAYS:
        raise SearchRejected(f"Departing within 0 to {MAX_DEPARTING_DAYS} days.")
    stmt = search_statement(agency_id, query, sort, departing, today)
    if stmt is None:
        return SearchPage(query, [], 1, per_page, 0, sort, departing)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = max(1, min(page, math.ceil(total / per_page) or 1))
    clients = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    stats = booking_stats(session, agency_id, [c.id for c in clients], today)
    rows = [ClientRow(c, *stats.get(c.id, (0, None))) for c in clients]
    return SearchPage(query, rows, page, per_page, total, sort, departing)


def booking_stats(
    session: Session, agency_id: int | None, client_ids: list[int], today: date
) -> dict[int, tuple[int, date | None]]:
    """Client id -> (number of bookings, next departure of a non-cancelled booking from `today`)."""
    if not client_ids:
        return {}
    upcoming = case(
        (
            and_(
                Segment.departure_date >= today,
                Booking.status != BookingStatus.CANCELLED.value,
            ),
            Segment.departure_date,
        )
    )
    rows = session.execute(
        select(Booking.client_id, func.count(distinct(Booking.id)), func.min(upcoming))
        .outerjoin(Segment, Segment.booking_id == Booking.id)
        .where(Booking.agency_id == agency_id, Booking.client_id.in_(client_ids))
        .group_by(Booking.client_id)
    )
    return {client_id: (count, next_date) for client_id, count, next_date in rows}
