"""On PostgreSQL with ~20k clients, every search statement is answered from the clients indexes.

The statements the service really runs are captured and EXPLAINed with their parameters; the
planner is left free (no enable_seqscan tricks), so realistic data and ANALYZE must suffice.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import event, insert, select, text

from cms.clients.search import search_clients
from cms.extensions import db
from cms.models import Agency, Booking, Client, Segment, client_search_keys
from tests.conftest import build_app, make_settings

AGENCIES = 10
CLIENTS = 20_000
BOOKINGS = 4_000
TODAY = date(2030, 6, 1)
SYLLABLES = ["an", "bel", "cor", "da", "el", "fi", "gar", "ho", "is", "jo", "ka", "lu", "mar",
             "ne", "ol", "pa", "qui", "ro", "sa", "te", "ul", "va", "wen", "xi", "yo", "zu"]
CLIENT_INDEXES = {"ix_clients_agency_last_first", "ix_clients_agency_first_last",
                  "ix_clients_agency_email", "ix_clients_agency_phone", "pk_clients"}


def _name(rnd: random.Random, parts: int) -> str:
    return "".join(rnd.choice(SYLLABLES) for _ in range(parts)).capitalize()


def _seed(agency_ids: list[int]) -> None:
    rnd = random.Random(20)
    rows = []
    for n in range(CLIENTS):
        first, last = _name(rnd, 2), _name(rnd, 3)
        email = f"{first}.{last}{n}@mail{n % 7}.example".lower()
        phone = f"+{rnd.randrange(1, 99)} {rnd.randrange(10**8, 10**9)}"
        rows.append({"agency_id": agency_ids[n % AGENCIES], "first_name": first, "last_name": last,
                     "email": email, "phone": phone, "notes": "", "preferences": {}, "version": 1,
                     **client_search_keys(first, last, email, phone)})
    db.session.execute(insert(Client), rows)
    client_ids = db.session.execute(select(Client.id, Client.agency_id).order_by(Client.id)).all()
    bookings = [{"agency_id": agency_id, "client_id": client_id, "record_locator": f"P{n:05d}",
                 "status": "confirmed", "currency": "EUR", "notes": "", "version": 1}
                for n, (client_id, agency_id) in enumerate(client_ids[:BOOKINGS])]
    db.session.execute(insert(Booking), bookings)
    booking_ids = db.session.scalars(select(Booking.id)).all()
    db.session.execute(insert(Segment), [
        {"booking_id": b, "position": 1, "carrier": "BA", "flight_number": "1", "origin": "LHR",
         "destination": "JFK", "departure_date": TODAY + timedelta(days=b % 90), "cabin": "Y", "fare": 100}
        for b in booking_ids
    ])
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


@pytest.fixture(scope="module")
def big_app(tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str) -> Iterator[tuple[Flask, int]]:
    """A PostgreSQL app with the seeded data (built once: seeding takes a few seconds)."""
    import psycopg

    schema = f"t_plan_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = postgres_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    try:
        builder = build_app(make_settings(Path(tmp_path_factory.mktemp("plan")), url))
        app = next(builder)
        with app.app_context():
            agencies = [Agency(name=f"Plan agency {n}") for n in range(AGENCIES)]
            db.session.add_all(agencies)
            db.session.commit()
            agency_ids = [a.id for a in agencies]
            _seed(agency_ids)
        yield app, agency_ids[3]
        next(builder, None)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _plans_for(app: Flask, agency_id: int, query: str, page: int = 1) -> tuple[list[str], int]:
    """EXPLAIN every statement on clients that `search_clients` runs; return the plans and the hits."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FROM clients" in statement:
            statements.append((statement, parameters))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            results = search_clients(db.session, agency_id, query, page, TODAY)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        with db.engine.connect() as conn:
            plans = ["\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params))
                     for sql, params in statements]
    return plans, results.total


def _sample(app: Flask, agency_id: int) -> Client:
    with app.app_context():
        client = db.session.scalars(
            select(Client).where(Client.agency_id == agency_id).order_by(Client.id).offset(50).limit(1)
        ).one()
        db.session.expunge(client)
        return client


@pytest.mark.parametrize(
    "make_query",
    [
        pytest.param(lambda c: c.first_name[:3], id="first-name-prefix"),
        pytest.param(lambda c: c.last_name[:4].upper(), id="last-name-prefix"),
        pytest.param(lambda c: f"{c.first_name} {c.last_name[:2]}", id="first-last"),
        pytest.param(lambda c: f"{c.last_name}, {c.first_name[:1]}", id="last-first"),
        pytest.param(lambda c: c.email[:8], id="email-prefix"),
        pytest.param(lambda c: c.phone[:7], id="phone-prefix"),
        pytest.param(lambda c: "P00013", id="locator"),
        pytest.param(lambda c: "", id="blank-lists-agency"),
    ],
)
def test_search_statements_use_the_client_indexes(big_app: tuple[Flask, int], make_query: Any) -> None:
    app, agency_id = big_app
    query = make_query(_sample(app, agency_id))

    plans, total = _plans_for(app, agency_id, query)

    assert total >= 1, query
    assert len(plans) == 2  # the count and the page
    for plan in plans:
        assert "Seq Scan on clients" not in plan, plan
        assert any(name in plan for name in CLIENT_INDEXES), plan
        assert "Seq Scan on bookings" not in plan, plan


def test_prefix_search_uses_range_conditions_on_each_key(big_app: tuple[Flask, int]) -> None:
    app, agency_id = big_app
    plans, _ = _plans_for(app, agency_id, "zuqui")
    count_plan = plans[0]
    assert "BitmapOr" in count_plan
    for index in ("ix_clients_agency_first_last", "ix_clients_agency_last_first", "ix_clients_agency_email"):
        assert f"Bitmap Index Scan on {index}" in count_plan
    assert "first_last_key)::text >= 'zuqui'::text" in count_plan
    assert "first_last_key)::text < 'zuquj'::text" in count_plan

