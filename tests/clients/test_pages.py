"""Dashboard and client page data on SQLite and PostgreSQL: recent clients, departures, timeline."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from cms.clients import pages
from cms.errors import NotFound
from cms.models import Activity, RecentClient, Segment, User
from tests import factories
from tests.clients.conftest import World

TODAY = date(2030, 6, 1)


def test_opening_a_client_upserts_one_recent_row(world: World) -> None:
    client = factories.make_client(world.session, world.alpha)
    pages.open_client(world.session, world.alice, client.id)
    first = world.session.scalars(select(RecentClient.viewed_at)).one()
    pages.open_client(world.session, world.alice, client.id)
    rows = world.session.scalars(select(RecentClient)).all()
    assert len(rows) == 1 and rows[0].viewed_at >= first


def test_recent_clients_newest_first_mine_only_ten(world: World) -> None:
    s = world.session
    clients = [factories.make_client(s, world.alpha, last_name=f"Recent{n:02d}") for n in range(12)]
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    for n, client in enumerate(clients):
        s.add(RecentClient(user_id=world.alice.user_id, client_id=client.id, viewed_at=start + timedelta(minutes=n)))
    s.add(RecentClient(user_id=world.ada.user_id, client_id=clients[0].id, viewed_at=start + timedelta(days=1)))
    s.commit()
    pages.open_client(s, world.alice, clients[3].id)  # now the newest

    recent = pages.dashboard(s, world.alice, TODAY).recent

    names = [entry.client.last_name for entry in recent]
    assert names == ["Recent03", *[f"Recent{n:02d}" for n in range(11, 1, -1) if n != 3]]
    assert len(names) == 10


def test_upcoming_departures_are_mine_future_and_not_cancelled(world: World) -> None:
    s = world.session
    alice, ada = s.get(User, world.alice.user_id), s.get(User, world.ada.user_id)
    client = factories.make_client(s, world.alpha, first_name="Dee", last_name="Parture")
    later = factories.make_booking(s, client, alice, "LATER1", TODAY + timedelta(days=20))
    today = factories.make_booking(s, client, alice, "TODAY1", TODAY)
    factories.make_booking(s, client, alice, "PAST01", TODAY - timedelta(days=1))
    factories.make_booking(s, client, alice, "CANCEL", TODAY + timedelta(days=2), status="cancelled")
    factories.make_booking(s, client, ada, "ADAS01", TODAY + timedelta(days=1))
    factories.make_booking(s, client, None, "NOBODY", TODAY + timedelta(days=1))
    later.segments.append(Segment(position=2, carrier="BA", flight_number="118", origin="JFK",
                                  destination="LHR", departure_date=TODAY + timedelta(days=27)))
    s.commit()

    departures = pages.dashboard(s, world.alice, TODAY).departures

    assert [(d.booking.record_locator, d.segment.flight, d.client.full_name) for d in departures] == [
        ("TODAY1", "BA117", "Dee Parture"), ("LATER1", "BA117", "Dee Parture"), ("LATER1", "BA118", "Dee Parture"),
    ]
    assert departures[0].booking.id == today.id


def test_departures_are_capped_at_ten(world: World) -> None:
    s = world.session
    alice = s.get(User, world.alice.user_id)
    client = factories.make_client(s, world.alpha)
    for n in range(12):
        factories.make_booking(s, client, alice, departure=TODAY + timedelta(days=12 - n))
    dates = [d.segment.departure_date for d in pages.dashboard(s, world.alice, TODAY).departures]
    assert dates == [TODAY + timedelta(days=n) for n in range(1, 11)]


def test_client_page_has_bookings_and_newest_timeline(world: World) -> None:
    s = world.session
    client = factories.make_client(s, world.alpha)
    booking = factories.make_booking(s, client, s.get(User, world.alice.user_id), departure=TODAY)
    booking.segments.append(Segment(position=2, carrier="BA", flight_number="118", origin="JFK",
                                    destination="LHR", departure_date=TODAY + timedelta(days=7), fare=100))
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    for n in range(55):
        s.add(Activity(agency_id=world.alpha.id, client_id=client.id, kind="note", body=f"note {n}",
                       created_at=start + timedelta(minutes=n)))
    s.commit()

    page = pages.client_page(s, world.alpha.id, client.id)

    (row,) = page.bookings
    assert (row.route, row.first_departure, str(row.total_fare)) == ("LHR → JFK → LHR", TODAY, "520.00")
    assert len(page.timeline) == 50
    assert [a.body for a in page.timeline[:2]] == ["note 54", "note 53"]


def test_other_agency_client_page_is_not_found_and_not_remembered(world: World) -> None:
    client = factories.make_client(world.session, world.alpha)
    with pytest.raises(NotFound):
        pages.open_client(world.session, world.bob, client.id)
    with pytest.raises(NotFound):
        pages.client_page(world.session, world.beta.id, client.id)
    assert world.session.scalars(select(RecentClient)).all() == []


@pytest.mark.parametrize(
    ("legs", "summary"),
    [
        ([], ""),
        ([("LHR", "JFK")], "LHR → JFK"),
        ([("LHR", "JFK"), ("JFK", "SFO"), ("SFO", "LHR")], "LHR → JFK → SFO → LHR"),
        ([("LHR", "JFK"), ("BOS", "LHR")], "LHR → JFK · BOS → LHR"),
    ],
)
def test_route_summary(legs: list[tuple[str, str]], summary: str) -> None:
    segments = [Segment(origin=o, destination=d) for o, d in legs]
    assert pages.route_summary(segments) == summary
