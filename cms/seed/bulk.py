"""Write generated agencies, agents, clients and bookings with batched Core inserts.

Each item has an identity derived from its index (agency name, agent username, client e-mail,
booking locator), so a run only inserts what is missing: seeding twice adds nothing, seeding with
larger numbers adds only the new items. Work is committed per batch, so an interrupted run
leaves whole clients with their bookings and the next run picks up where it stopped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ContextManager, Iterable, Iterator, Protocol, Sequence

from sqlalchemy import Table, exists, insert, select, text
from sqlalchemy.orm import Session

from cms.models import (
    Activity,
    Agency,
    Booking,
    Client,
    Passenger,
    RecentClient,
    Role,
    Segment,
    User,
)
from cms.seed import generator as gen

BATCH_ROWS = 5000
CLIENTS_PER_BATCH = 2000
RECENT_PER_AGENT = 5
KINDS = ("agencies", "users", "clients", "bookings", "segments", "passengers", "notes", "recent")


class ProgressBar(Protocol):
    def update(self, n_steps: int) -> None: ...


class Progress(Protocol):
    def __call__(self, label: str, total: int) -> ContextManager[ProgressBar]: ...


class _Silent:
    def update(self, n_steps: int) -> None:
        pass


@contextlib.contextmanager
def no_progress(label: str, total: int) -> Iterator[ProgressBar]:
    """A Progress that shows nothing (services and tests)."""
    yield _Silent()


@dataclass(frozen=True)
class SeedPlan:
    """How many bulk items should exist; bookings_per_client is a mean."""

    agencies: int = 3
    agents: int = 20
    clients: int = 300
    bookings_per_client: float = 1.5


@dataclass
class Tally:
    created: int = 0
    present: int = 0


@dataclass
class SeedReport:
    """Counts per kind of item: created by this run, or found already present."""

    tallies: dict[str, Tally] = field(default_factory=lambda: {kind: Tally() for kind in KINDS})

    def created(self, kind: str, n: int = 1) -> None:
        self.tallies[kind].created += n

    def present(self, kind: str, n: int = 1) -> None:
        self.tallies[kind].present += n

    @property
    def anything_created(self) -> bool:
        return any(tally.created for tally in self.tallies.values())


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def insert_returning_ids(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert `rows` in batches; return their new ids in the order of `rows`."""
    table = _table(model)
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for chunk in _chunks(rows, BATCH_ROWS):
        ids.extend(session.execute(statement, list(chunk)).scalars())
    return ids


def insert_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` in batches, without reading anything back."""
    for chunk in _chunks(rows, BATCH_ROWS):
        session.execute(insert(_table(model)), list(chunk))


def insert_drafts(session: Session, drafts: Sequence[gen.BookingDraft], report: SeedReport) -> None:
    """Insert bookings (each draft's booking row must carry client_id) with passengers and segments."""
    booking_ids = insert_returning_ids(session, Booking, [d.booking for d in drafts])
    passengers: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    for booking_id, draft in zip(booking_ids, drafts):
        passengers.extend({**row, "booking_id": booking_id} for row in draft.passengers)
        segments.extend({**row, "booking_id": booking_id} for row in draft.segments)
    insert_rows(session, Passenger, passengers)
    insert_rows(session, Segment, segments)
    report.created("bookings", len(drafts))
    report.created("passengers", len(passengers))
    report.created("segments", len(segments))


def existing_locators(session: Session) -> set[str]:
    return set(session.scalars(select(Booking.record_locator)))


def _in_chunks(session: Session, statement_for: Any, values: Sequence[Any]) -> Iterable[Any]:
    for chunk in _chunks(values, 1000):
        yield from session.execute(statement_for(list(chunk)))


def ensure_agencies(session: Session, count: int, report: SeedReport) -> list[int]:
    """Make sure agencies 1..count exist; return their ids in index order."""
    names = [gen.agency_name(i) for i in range(1, count + 1)]
    found = dict(_in_chunks(
        session, lambda chunk: select(Agency.name, Agency.id).where(Agency.name.in_(chunk)), names
    ))
    missing = [{"name": name} for name in names if name not in found]
    found.update(zip((row["name"] for row in missing), insert_returning_ids(session, Agency, missing)))
    session.commit()
    report.created("agencies", len(missing))
    report.present("agencies", count - len(missing))
    return [found[name] for name in names]


def ensure_agents(
    session: Session,
    count: int,
    agency_ids: Sequence[int],
    password_hash: str,
    report: SeedReport,
    progress: Progress = no_progress,
) -> None:
    """Make sure agents 1..count exist; new ones are dealt round-robin to `agency_ids`."""
    existing = set(session.scalars(select(User.username).where(User.username.like("agent%"))))
    missing = [i for i in range(1, count + 1) if gen.agent_username(i) not in existing]
    report.present("users", count - len(missing))
    if missing and not agency_ids:
        raise ValueError("agents need at least one agency")
    with progress("Agents", len(missing)) as bar:
        for chunk in _chunks(missing, BATCH_ROWS):
            rows = [
                {**gen.agent_row(i, agency_ids[(i - 1) % len(agency_ids)], password_hash),
                 "role": Role.AGENT}
                for i in chunk
            ]
            insert_rows(session, User, rows)
            session.commit()
            report.created("users", len(rows))
            bar.update(len(rows))


def agents_by_agency(session: Session, agency_ids: Iterable[int]) -> dict[int, list[int]]:
    """Active agents' ids per agency, ascending (the pool a booking's agent is drawn from)."""
    pools: dict[int, list[int]] = {agency_id: [] for agency_id in agency_ids}
    rows = session.execute(
        select(User.agency_id, User.id)
        .where(User.agency_id.in_(list(pools)), User.role == Role.AGENT, User.is_active.is_(True))
        .order_by(User.id)
    )
    for agency_id, user_id in rows:
        pools[agency_id].append(user_id)
    return pools


def existing_clients(session: Session, agency_ids: Iterable[int]) -> dict[str, tuple[int, int]]:
    """E-mail key -> (client id, agency id) for the clients of `agency_ids`."""
    rows = session.execute(
        select(Client.email_key, Client.id, Client.agency_id).where(
            Client.agency_id.in_(list(agency_ids)), Client.email_key.is_not(None)
        )
    )
    return {email: (client_id, agency_id) for email, client_id, agency_id in rows if email}


def ensure_clients(
    session: Session,
    plan: SeedPlan,
    agency_ids: Sequence[int],
    report: SeedReport,
    progress: Progress = no_progress,
) -> None:
    """Make sure clients 1..plan.clients and their bookings exist (bulk series, fixed dates)."""
    seeded_agencies = set(session.scalars(select(Agency.id).where(Agency.name.like("Agency %"))))
    known = existing_clients(session, seeded_agencies | set(agency_ids))
    locators = existing_locators(session)
    pools = agents_by_agency(session, set(agency_ids) | {a for _, a in known.values()})
    with progress("Clients and bookings", plan.clients) as bar:
        for start in range(1, plan.clients + 1, CLIENTS_PER_BATCH):
            indexes = range(start, min(start + CLIENTS_PER_BATCH, plan.clients + 1))
            _seed_client_batch(session, plan, indexes, agency_ids, known, locators, pools, report)
            session.commit()
            bar.update(len(indexes))


def _seed_client_batch(
    session: Session,
    plan: SeedPlan,
    indexes: range,
    agency_ids: Sequence[int],
    known: dict[str, tuple[int, int]],
    locators: set[str],
    pools: dict[int, list[int]],
    report: SeedReport,
) -> None:
    clients: list[tuple[int, dict[str, Any]]] = []
    new_rows: list[dict[str, Any]] = []
    for index in indexes:
        row = gen.client_row(index, agency_ids[(index - 1) % len(agency_ids)], gen.BULK,
                             gen.REFERENCE_DATE)
        found = known.get(row["email_key"])
        if found:
            # Seeded earlier, perhaps with other options: keep the client where it is.
            row["id"], row["agency_id"] = found
            report.present("clients")
        else:
            new_rows.append(row)
        clients.append((index, row))
    for row, client_id in zip(new_rows, insert_returning_ids(session, Client, new_rows)):
        row["id"] = client_id
        known[row["email_key"]] = (client_id, row["agency_id"])
    report.created("clients", len(new_rows))
    drafts = missing_bookings(clients, plan.bookings_per_client, gen.BULK, gen.REFERENCE_DATE,
                              locators, lambda row: pools.get(row["agency_id"], []), report)
    insert_drafts(session, drafts, report)


def missing_bookings(
    clients: Iterable[tuple[int, dict[str, Any]]],
    mean: float,
    series: gen.Series,
    reference: date,
    locators: set[str],
    agents_for: Any,
    report: SeedReport,
) -> list[gen.BookingDraft]:
    """Drafts of the bookings of (index, client row with id) not yet in `locators`."""
    drafts = []
    for index, client in clients:
        for position in range(gen.booking_count(index, series, mean)):
            number = gen.booking_number(index, position, series)
            if gen.locator(number) in locators:
                report.present("bookings")
                continue
            draft = gen.booking_draft(client, number, series, reference, agents_for(client))
            draft.booking["client_id"] = client["id"]
            locators.add(draft.booking["record_locator"])
            drafts.append(draft)
    return drafts


def ensure_recent_clients(session: Session, report: SeedReport) -> None:
    """Give each seeded agent with no "recent clients" yet the clients of their latest bookings,
    so their dashboards look lived-in."""
    rows = session.execute(
        select(Booking.agent_id, Booking.client_id, Booking.created_at)
        .join(User, User.id == Booking.agent_id)
        .where(User.username.like("agent%"),
               ~exists().where(RecentClient.user_id == User.id))
        .order_by(Booking.agent_id, Booking.created_at.desc(), Booking.id.desc())
    )
    recent: list[dict[str, Any]] = []
    seen: set[tuple[int | None, int]] = set()
    per_agent: dict[int | None, int] = {}
    for agent_id, client_id, booked_at in rows:
        if per_agent.get(agent_id, 0) >= RECENT_PER_AGENT or (agent_id, client_id) in seen:
            continue
        seen.add((agent_id, client_id))
        per_agent[agent_id] = per_agent.get(agent_id, 0) + 1
        recent.append({"user_id": agent_id, "client_id": client_id, "viewed_at": booked_at})
    insert_rows(session, RecentClient, recent)
    session.commit()
    report.created("recent", len(recent))


def seed_bulk(
    session: Session,
    plan: SeedPlan,
    password_hash: str,
    report: SeedReport,
    progress: Progress = no_progress,
) -> None:
    """Make sure the plan's agencies, agents, clients and bookings exist."""
    agency_ids = ensure_agencies(session, plan.agencies, report)
    ensure_agents(session, plan.agents, agency_ids, password_hash, report, progress)
    if plan.clients:
        if not agency_ids:
            raise ValueError("clients need at least one agency")
        ensure_clients(session, plan, agency_ids, report, progress)
        ensure_recent_clients(session, report)


def refresh_planner_statistics(session: Session) -> None:
    """ANALYZE the seeded tables: after a bulk load the query planner's statistics are stale, or
    missing altogether where autovacuum is off, and searches then pick slow plans."""
    dialect = session.get_bind().dialect.name
    tables = [_table(model).name for model in
              (Agency, User, Client, Booking, Passenger, Segment, Activity, RecentClient)]
    if dialect == "postgresql":
        session.execute(text("ANALYZE " + ", ".join(tables)))
    elif dialect == "sqlite":
        for table in tables:
            session.execute(text(f"ANALYZE {table}"))
    session.commit()
