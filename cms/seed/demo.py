"""The demo agency "Demo Travel": an admin, an agent, and a book of clients around today's date.

Unlike the bulk data, demo bookings are placed relative to `today` (departures in the coming
weeks), so the demo agent's dashboard always has something on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.models import Activity, ActivityKind, Agency, Client, RecentClient, Role, User
from cms.seed import generator as gen
from cms.seed import vocabulary as words
from cms.seed.bulk import (
    SeedReport,
    existing_clients,
    existing_locators,
    insert_drafts,
    insert_returning_ids,
    missing_bookings,
)

DEMO_AGENCY = "Demo Travel"
DEMO_CLIENTS = 40
DEMO_BOOKINGS_PER_CLIENT = 2.0
RECENT_CLIENTS = 6
_ACCOUNTS = (
    ("demo.admin", Role.ADMIN, "Dana Demo"),
    ("demo.agent", Role.AGENT, "Alex Demo"),
)


@dataclass(frozen=True)
class DemoAccount:
    """A demo login; `password_hash` is the stored one (it may predate this run)."""

    username: str
    role: Role
    created: bool
    password_hash: str


def _ensure_agency(session: Session, report: SeedReport) -> Agency:
    agency = session.scalar(select(Agency).where(Agency.name == DEMO_AGENCY))
    if agency is None:
        agency = Agency(name=DEMO_AGENCY)
        session.add(agency)
        session.flush()
        report.created("agencies")
    else:
        report.present("agencies")
    return agency


def _ensure_accounts(
    session: Session, agency: Agency, password_hash: str, report: SeedReport
) -> list[tuple[User, bool]]:
    accounts = []
    for username, role, display_name in _ACCOUNTS:
        user = session.scalar(select(User).where(User.username == username))
        created = user is None
        if user is None:
            user = User(agency_id=agency.id, username=username, display_name=display_name,
                        email=f"{username}@demo-travel.example", role=role,
                        password_hash=password_hash)
            session.add(user)
            session.flush()
        if created:
            report.created("users")
        else:
            report.present("users")
        accounts.append((user, created))
    return accounts


def seed_demo(
    session: Session, password_hash: str, today: date, now: datetime, report: SeedReport
) -> list[DemoAccount]:
    """Make sure the demo agency, accounts, clients, bookings and notes exist; return the accounts."""
    agency = _ensure_agency(session, report)
    accounts = _ensure_accounts(session, agency, password_hash, report)
    agent = next(user for user, _ in accounts if user.username == "demo.agent")

    known = existing_clients(session, [agency.id])
    clients: list[tuple[int, dict[str, Any]]] = []
    new_rows: list[dict[str, Any]] = []
    for index in range(1, DEMO_CLIENTS + 1):
        row = gen.client_row(index, agency.id, gen.DEMO, today)
        row["created_by_id"] = agent.id
        if row["email_key"] in known:
            row["id"] = known[row["email_key"]][0]
            report.present("clients")
        else:
            new_rows.append(row)
        clients.append((index, row))
    for row, client_id in zip(new_rows, insert_returning_ids(session, Client, new_rows)):
        row["id"] = client_id
    report.created("clients", len(new_rows))

    drafts = missing_bookings(clients, DEMO_BOOKINGS_PER_CLIENT, gen.DEMO, today,
                              existing_locators(session), lambda _row: [agent.id], report)
    insert_drafts(session, drafts, report)
    _add_notes(session, agent, new_rows[: len(words.DEMO_NOTES)], now, report)
    _add_recent(session, agent, [row["id"] for _, row in clients[:RECENT_CLIENTS]], now, report)
    session.commit()
    return [DemoAccount(user.username, user.role, created, user.password_hash)
            for user, created in accounts]


def _add_notes(
    session: Session, agent: User, rows: list[dict[str, Any]], now: datetime, report: SeedReport
) -> None:
    """A note on each newly created client among the first few, as the agent's own entries."""
    for hours, (row, body) in enumerate(zip(rows, words.DEMO_NOTES), start=1):
        session.add(Activity(agency_id=row["agency_id"], client_id=row["id"], user_id=agent.id,
                             kind=ActivityKind.NOTE.value, body=body,
                             created_at=now - timedelta(hours=3 * hours)))
        report.created("notes")


def _add_recent(
    session: Session, agent: User, client_ids: list[int], now: datetime, report: SeedReport
) -> None:
    """Fill the agent's "recent clients" with the first demo clients (missing entries only)."""
    seen = set(session.scalars(select(RecentClient.client_id).where(RecentClient.user_id == agent.id)))
    for minutes, client_id in enumerate(client_ids, start=1):
        if client_id not in seen:
            session.add(RecentClient(user_id=agent.id, client_id=client_id,
                                     viewed_at=now - timedelta(minutes=17 * minutes)))
            report.created("recent")
