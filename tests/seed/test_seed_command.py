"""`flask seed` on SQLite and PostgreSQL: idempotent, grows in place, deterministic, consistent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from cms.bookings.locators import normalize_locator
from cms.extensions import db
from cms.models import (
    Activity,
    Agency,
    Booking,
    Client,
    Passenger,
    RecentClient,
    Segment,
    User,
    client_search_keys,
    utcnow,
)
from tests.conftest import Browser, build_app, make_settings

SMALL = ["--agencies", "2", "--agents", "6", "--clients", "80"]


def seed(app: Flask, *args: str, env: dict[str, str] | None = None) -> Any:
    result = app.test_cli_runner().invoke(args=["seed", *args], env=env)
    assert result.exit_code == 0, result.output
    return result


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every seeded row that matters, in a stable order."""
    with app.app_context():
        s = db.session
        return {
            "agencies": s.execute(select(Agency.id, Agency.name).order_by(Agency.id)).all(),
            "users": s.execute(
                select(User.id, User.username, User.agency_id, User.role, User.password_hash)
                .order_by(User.id)
            ).all(),
            "clients": s.execute(
                select(Client.id, Client.agency_id, Client.first_name, Client.last_name,
                       Client.email, Client.phone, Client.notes, Client.created_at)
                .order_by(Client.id)
            ).all(),
            "bookings": s.execute(
                select(Booking.id, Booking.record_locator, Booking.client_id, Booking.agent_id,
                       Booking.status, Booking.currency).order_by(Booking.id)
            ).all(),
            "segments": s.execute(
                select(Segment.id, Segment.booking_id, Segment.carrier, Segment.origin,
                       Segment.departure_date, Segment.fare).order_by(Segment.id)
            ).all(),
            "passengers": s.execute(
                select(Passenger.id, Passenger.booking_id, Passenger.first_name)
                .order_by(Passenger.id)
            ).all(),
            "notes": s.execute(select(Activity.id, Activity.body).order_by(Activity.id)).all(),
            "recent": s.execute(
                select(RecentClient.user_id, RecentClient.client_id, RecentClient.viewed_at)
                .order_by(RecentClient.user_id, RecentClient.client_id)
            ).all(),
        }


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))  # type: ignore[no-any-return]


def test_seeding_twice_adds_nothing(any_db_app: Flask) -> None:
    first = seed(any_db_app, *SMALL)
    before = snapshot(any_db_app)
    second = seed(any_db_app, *SMALL)
    assert snapshot(any_db_app) == before
    assert "Demo login: demo.agent / demo-travel-2026 (agent)" in first.output
    assert "Demo login: demo.agent / demo-travel-2026 (agent)" in second.output
    assert len(before["agencies"]) == 3  # two bulk agencies and Demo Travel
    assert len(before["users"]) == 6 + 2
    assert len(before["clients"]) == 80 + 40
    summary = {line.split()[0]: line.split()[1:] for line in second.output.splitlines()
               if line.startswith("  ") and line.split()[0] in ("clients", "bookings")}
    assert summary["clients"] == ["0", "120"]
    assert summary["bookings"][0] == "0" and int(summary["bookings"][1]) > 100


def test_larger_numbers_add_only_the_missing_items(any_db_app: Flask) -> None:
    seed(any_db_app, "--agencies", "2", "--agents", "4", "--clients", "50", "--no-demo")
    before = snapshot(any_db_app)
    seed(any_db_app, "--agencies", "3", "--agents", "9", "--clients", "120", "--no-demo")
    after = snapshot(any_db_app)
    for kind, rows in before.items():
        assert after[kind][: len(rows)] == rows, kind
    assert [name for _, name in after["agencies"]] == ["Agency 001", "Agency 002", "Agency 003"]
    assert [u.username for u in after["users"]] == [f"agent{i:05d}" for i in range(1, 10)]
    assert len(after["clients"]) == 120
    assert len(after["bookings"]) > len(before["bookings"])
    # The new agency got its share of the new agents and clients.
    third = after["agencies"][2].id
    assert any(u.agency_id == third for u in after["users"])
    assert any(c.agency_id == third for c in after["clients"])


def _content(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    with app.app_context():
        s = db.session
        return {
            "clients": s.execute(
                select(Client.first_name, Client.last_name, Client.email, Client.phone)
                .order_by(Client.email)
            ).all(),
            "bookings": s.execute(
                select(Booking.record_locator, Booking.status, Client.email)
                .join(Client, Client.id == Booking.client_id)
                .order_by(Booking.record_locator)
            ).all(),
            "segments": s.execute(
                select(Booking.record_locator, Segment.position, Segment.carrier,
                       Segment.flight_number, Segment.origin, Segment.destination,
                       Segment.departure_date, Segment.fare)
                .join(Booking, Booking.id == Segment.booking_id)
                .order_by(Booking.record_locator, Segment.position)
            ).all(),
        }


def test_two_fresh_databases_get_identical_data(any_db_app: Flask, tmp_path: Path) -> None:
    args = ["--agencies", "2", "--agents", "5", "--clients", "60", "--no-demo"]
    seed(any_db_app, *args)
    (tmp_path / "other").mkdir()
    other = build_app(make_settings(tmp_path / "other"))
    other_app = next(other)
    try:
        seed(other_app, *args)
        expected = _content(other_app)
    finally:
        next(other, None)
    assert _content(any_db_app) == expected
    assert len(expected["clients"]) == 60 and expected["bookings"]


def test_seeded_rows_are_consistent(any_db_app: Flask) -> None:
    seed(any_db_app, *SMALL)
    with any_db_app.app_context():
        s = db.session
        bookings = s.execute(
            select(Booking, Client.agency_id, User.agency_id)
            .join(Client, Client.id == Booking.client_id)
            .join(User, User.id == Booking.agent_id)
        ).all()
        assert len(bookings) == count(any_db_app, Booking) > 100
        for booking, client_agency, agent_agency in bookings:
            assert booking.agency_id == client_agency == agent_agency
            assert normalize_locator(booking.record_locator) == booking.record_locator
            assert 1 <= len(booking.passengers) <= 3 and 1 <= len(booking.segments) <= 4
        for client in s.scalars(select(Client)):
            keys = client_search_keys(client.first_name, client.last_name, client.email, client.phone)
            assert {name: getattr(client, name) for name in keys} == keys
            assert client.first_last_key
        agents_per_agency = s.execute(
            select(User.agency_id, func.count()).where(User.username.like("agent%"))
            .group_by(User.agency_id)
        ).all()
        assert sorted(n for _, n in agents_per_agency) == [3, 3]  # round-robin
        recent = s.execute(
            select(RecentClient.user_id, User.agency_id, Client.agency_id)
            .join(User, User.id == RecentClient.user_id)
            .join(Client, Client.id == RecentClient.client_id)
        ).all()
        assert recent and all(user_agency == client_agency for _, user_agency, client_agency in recent)
        per_user = [n for _, n in s.execute(
            select(RecentClient.user_id, func.count()).group_by(RecentClient.user_id))]
        assert max(per_user) <= 6


def test_demo_agent_has_a_lively_dashboard(any_db_app: Flask) -> None:
    seed(any_db_app, "--agencies", "1", "--agents", "1", "--clients", "0")
    with any_db_app.app_context():
        s = db.session
        agent = s.scalar(select(User).where(User.username == "demo.agent"))
        demo = s.scalar(select(Agency).where(Agency.name == "Demo Travel"))
        assert agent.agency_id == demo.id
        clients = s.scalars(select(Client).where(Client.agency_id == demo.id)).all()
        assert len(clients) == 40 and all(c.created_by_id == agent.id for c in clients)
        today = utcnow().date()
        soon = s.scalar(
            select(func.count(func.distinct(Booking.id)))
            .join(Segment, Segment.booking_id == Booking.id)
            .where(Booking.agent_id == agent.id, Segment.departure_date >= today,
                   Segment.departure_date <= today + timedelta(days=21))
        )
        assert soon >= 5
        assert s.scalar(select(func.count()).select_from(Activity)
                        .where(Activity.user_id == agent.id, Activity.kind == "note")) >= 2
        assert s.scalar(select(func.count()).select_from(RecentClient)
                        .where(RecentClient.user_id == agent.id)) > 0


@pytest.mark.parametrize("username", ["demo.agent", "demo.admin", "agent00001"])
def test_seeded_accounts_log_in_through_the_form(any_db_app: Flask, username: str) -> None:
    seed(any_db_app, "--agencies", "1", "--agents", "1", "--clients", "5")
    browser = Browser(any_db_app.test_client())
    assert browser.login(username, "wrong-password-9").status_code == 401
    response = browser.login(username, "demo-travel-2026")
    assert response.status_code == 302
    assert browser.get("/").status_code == 200


def test_demo_password_comes_from_the_environment(app: Flask) -> None:
    result = seed(app, "--agencies", "1", "--agents", "1", "--clients", "0",
                  env={"CMS_DEMO_PASSWORD": "sunny-beaches-77"})
    assert "Demo login: demo.agent / sunny-beaches-77 (agent)" in result.output
    assert Browser(app.test_client()).login("demo.agent", "sunny-beaches-77").status_code == 302
    # A later run with another password leaves the account alone and says so.
    again = seed(app, "--agencies", "1", "--agents", "1", "--clients", "0")
    assert "demo.agent already existed with another password" in again.output
    assert Browser(app.test_client()).login("demo.agent", "sunny-beaches-77").status_code == 302


@pytest.mark.parametrize(
    "args",
    [
        ["--agents", "-1"],
        ["--clients", "-5"],
        ["--agencies", "-2"],
        ["--bookings-per-client", "-0.5"],
        ["--bookings-per-client", "50"],
        ["--agencies", "0", "--agents", "3"],
        ["--password", "short"],
    ],
)
def test_bad_options_fail_with_one_line_and_write_nothing(app: Flask, args: list[str]) -> None:
    result = app.test_cli_runner().invoke(args=["seed", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert count(app, Agency) == 0 and count(app, User) == 0


def test_help_lists_the_options(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["seed", "--help"])
    assert result.exit_code == 0
    for option in ("--agencies", "--agents", "--clients", "--bookings-per-client", "--no-demo"):
        assert option in result.output


def test_seeding_refreshes_planner_statistics(any_db_app: Flask) -> None:
    seed(any_db_app, "--agencies", "1", "--agents", "2", "--clients", "30", "--no-demo")
    with any_db_app.app_context():
        if db.engine.dialect.name == "postgresql":
            query = ("SELECT count(*) FROM pg_stats "
                     "WHERE schemaname = current_schema() AND tablename = 'clients'")
        else:
            query = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'clients'"
        assert db.session.scalar(text(query)) > 0
