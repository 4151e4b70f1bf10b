"""`flask seed`: deterministic, idempotent demo data, with a progress bar and a summary."""

from __future__ import annotations

from typing import Any

import contextlib
import sys
import time
from typing import Iterator

import click
from flask.cli import with_appcontext

from cms.app_state import state
from cms.auth.passwords import password_problem
from cms.extensions import db
from cms.models import utcnow
from cms.seed import generator as gen
from cms.seed.bulk import (
    ProgressBar,
    SeedPlan,
    SeedReport,
    no_progress,
    refresh_planner_statistics,
    seed_bulk,
)
from cms.seed.demo import DemoAccount, seed_demo

DEFAULT_DEMO_PASSWORD = "demo-travel-2026"
MAX_BOOKINGS_PER_CLIENT_MEAN = 6.0


@contextlib.contextmanager
def _progressbar(label: str, total: int) -> Iterator[ProgressBar]:
    if total <= 0:
        with no_progress(label, total) as silent:
            yield silent
        return
    with click.progressbar(length=total, label=label.ljust(22), file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        yield bar


def _option_problem(agencies: int, agents: int, clients: int, mean: float, password: str) -> str | None:
    for name, value in (("--agencies", agencies), ("--agents", agents), ("--clients", clients)):
        if value < 0:
            return f"{name} must be 0 or more (got {value})."
    if not 0 <= mean <= MAX_BOOKINGS_PER_CLIENT_MEAN:
        return f"--bookings-per-client must be between 0 and {MAX_BOOKINGS_PER_CLIENT_MEAN:g} (got {mean:g})."
    if clients > gen.MAX_CLIENTS:
        return f"--clients must be at most {gen.MAX_CLIENTS} (got {clients})."
    if agencies == 0 and (agents or clients):
        return "--agencies must be at least 1 when agents or clients are seeded."
    problem = password_problem(password)
    return f"Demo password unusable: {problem}" if problem else None


FLIGHT_DAYS = 60


def seed_flights(session: Any, start: Any) -> int:
    """Load the terminal's flight inventory from `start` for FLIGHT_DAYS days, once."""
    from sqlalchemy import func, select

    from cms.models import Flight
    from cms.plugins.inventory import demo_schedule

    if session.scalar(select(func.count()).select_from(Flight)):
        return 0
    rows = [
        {"carrier": f.carrier, "flight_number": f.flight_number, "origin": f.origin,
         "destination": f.destination, "departure_date": f.departure_date, "departs": f.departs,
         "arrives": f.arrives, "seats": f.seats, "fares": f.fares}
        for f in demo_schedule(start, FLIGHT_DAYS)
    ]
    for at in range(0, len(rows), 5_000):
        session.execute(Flight.__table__.insert(), rows[at:at + 5_000])
    session.commit()
    return len(rows)


def _print_summary(report: SeedReport, seconds: float) -> None:
    click.echo(f"Seeding finished in {seconds:.1f} s.")
    click.echo(f"  {'':<11}{'created':>10}{'already present':>18}")
    for kind, tally in report.tallies.items():
        present = f"{tally.present:>18}" if kind in {"agencies", "users", "clients", "bookings"} else ""
        click.echo(f"  {kind:<11}{tally.created:>10}{present}")


def _print_logins(accounts: list[DemoAccount], password: str, agents: int) -> None:
    passwords = state().passwords
    for account in accounts:
        if account.created or passwords.verify(account.password_hash, password):
            click.echo(f"Demo login: {account.username} / {password} ({account.role.value})")
        else:
            click.echo(f"Demo login: {account.username} already existed with another password "
                       "(left unchanged).")
    if agents:
        click.echo(f"Agents agent00001..agent{agents:05d} share the password of the run that created "
                   f"them (this run: {password}).")


@click.command("seed")
@click.option("--agencies", type=int, default=3, show_default=True, help="Agencies to have.")
@click.option("--agents", type=int, default=20, show_default=True,
              help="Agents (agent00001, ...) to have, dealt round-robin to the agencies.")
@click.option("--clients", type=int, default=300, show_default=True,
              help="Clients to have, spread over the agencies.")
@click.option("--bookings-per-client", "bookings_per_client", type=float, default=1.5,
              show_default=True, help="Mean number of bookings per client.")
@click.option("--demo/--no-demo", default=True, show_default=True,
              help='Also create the "Demo Travel" agency with demo.admin and demo.agent.')
@click.option("--password", envvar="CMS_DEMO_PASSWORD", default=DEFAULT_DEMO_PASSWORD,
              show_default=True, help="Password of the demo and seeded accounts [env CMS_DEMO_PASSWORD].")
@with_appcontext
def seed_command(
    agencies: int, agents: int, clients: int, bookings_per_client: float, demo: bool, password: str
) -> None:
    """Add deterministic demo data; only what is missing is added, so re-running is safe."""
    problem = _option_problem(agencies, agents, clients, bookings_per_client, password)
    if problem:
        click.echo(f"Error: {problem}", err=True)
        sys.exit(2)
    started = time.perf_counter()
    # One hash for every seeded account: hashing thousands of passwords would take minutes.
    password_hash = state().passwords.hash(password)
    report = SeedReport()
    session = db.session()
    seed_bulk(session, SeedPlan(agencies, agents, clients, bookings_per_client), password_hash,
              report, _progressbar)
    flights = seed_flights(session, utcnow().date())
    if flights:
        click.echo(f"Flight inventory: {flights:,} flights added.")
    accounts: list[DemoAccount] = []
    if demo:
        now = utcnow()
        accounts = seed_demo(session, password_hash, now.date(), now, report)
    if report.anything_created:
        refresh_planner_statistics(session)
    _print_summary(report, time.perf_counter() - started)
    _print_logins(accounts, password, agents)
