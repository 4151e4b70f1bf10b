"""Client search on SQLite and PostgreSQL: each kind of key, folding, locators, tenancy, paging."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cms.clients.search import QUERY_MAX, SearchRejected, prefix_upper, search_clients
from cms.models import User
from tests import factories
from tests.clients.conftest import World

TODAY = date(2030, 6, 1)


def _names(world: World, query: str, agency_id: int | None = None, page: int = 1) -> list[str]:
    results = search_clients(world.session, agency_id or world.alpha.id, query, page, TODAY)
    return [row.client.full_name for row in results.rows]


@pytest.fixture
def people(world: World) -> World:
    s = world.session
    factories.make_client(s, world.alpha, first_name="Zoë", last_name="O'Brien-Smith",
                          email="Zoe.OBrien@Example.com", phone="+44 20 7946 0001")
    factories.make_client(s, world.alpha, first_name="José", last_name="Álvarez",
                          email="jalvarez@example.org", phone="(0033) 1 42 68 53 00")
    factories.make_client(s, world.alpha, first_name="Anna", last_name="Zobel",
                          email=None, phone=None)
    factories.make_client(s, world.beta, first_name="Zoe", last_name="Beta-Only",
                          email="zoe@beta.example", phone="+44 20 7946 0002")
    return world


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zoe", ["Zoë O'Brien-Smith"]),  # first name, accent folded
        ("ZOË", ["Zoë O'Brien-Smith"]),  # case folded
        ("o'brien", ["Zoë O'Brien-Smith"]),  # last name, punctuation dropped
        ("obrien smith", ["Zoë O'Brien-Smith"]),  # hyphen as a space
        ("zoe obr", ["Zoë O'Brien-Smith"]),  # "first last" prefix
        ("alvarez jo", ["José Álvarez"]),  # "last first" prefix
        ("alv", ["José Álvarez"]),
        ("zo", ["Zoë O'Brien-Smith", "Anna Zobel"]),  # first of one, last of the other
        ("zoe.ob", ["Zoë O'Brien-Smith"]),  # email prefix, case-insensitive
        ("JALVAREZ@EXAMPLE", ["José Álvarez"]),
        ("+44 20 79", ["Zoë O'Brien-Smith"]),  # phone digits prefix, formatting ignored
        ("0033142", ["José Álvarez"]),
        ("smith", []),  # not a prefix of either name order
        ("example.com", []),  # email matches by prefix only
        ("!!!", []),  # nothing searchable
    ],
)
def test_search_by_each_kind_of_key(people: World, query: str, expected: list[str]) -> None:
    assert _names(people, query) == expected


def test_phone_needs_three_digits(people: World) -> None:
    factories.make_client(people.session, people.alpha, first_name="Pat", last_name="Kim",
                          email=None, phone="12 345 678")
    assert _names(people, "12") == []
    assert _names(people, "123") == ["Pat Kim"]


def test_other_agencies_are_invisible(people: World) -> None:
    assert _names(people, "zoe") == ["Zoë O'Brien-Smith"]
    assert _names(people, "zoe", agency_id=people.beta.id) == ["Zoe Beta-Only"]
    assert _names(people, "+44 20 7946 0002") == []
    assert _names(people, "", agency_id=people.beta.id) == ["Zoe Beta-Only"]


def test_locator_is_exact_case_insensitive_and_scoped(people: World) -> None:
    s = people.session
    alpha_client = factories.make_client(s, people.alpha, first_name="Lou", last_name="Reed", email=None)
    beta_client = factories.make_client(s, people.beta, first_name="Nico", last_name="Paff", email=None)
    factories.make_booking(s, alpha_client, locator="QX7ABC")
    factories.make_booking(s, beta_client, locator="QX7DEF")

    assert _names(people, "qx7abc") == ["Lou Reed"]
    assert _names(people, " QX7ABC ") == ["Lou Reed"]
    assert _names(people, "QX7AB") == []
    assert _names(people, "QX7DEF") == []  # Beta's locator, searched from Alpha
    assert _names(people, "QX7DEF", agency_id=people.beta.id) == ["Nico Paff"]


def test_blank_query_lists_the_agency_alphabetically(people: World) -> None:
    assert _names(people, "") == ["José Álvarez", "Zoë O'Brien-Smith", "Anna Zobel"]
    assert _names(people, "   ") == _names(people, "")


def test_same_names_are_ordered_by_id(world: World) -> None:
    ids = [factories.make_client(world.session, world.alpha, first_name="Sam", last_name="Lee").id
           for _ in range(3)]
    rows = search_clients(world.session, world.alpha.id, "lee sam", 1, TODAY).rows
    assert [row.client.id for row in rows] == ids


def test_pages_are_clamped(world: World) -> None:
    for n in range(30):
        factories.make_client(world.session, world.alpha, first_name="Kim", last_name=f"Page{n:02d}")

    first = search_clients(world.session, world.alpha.id, "page", 1, TODAY)
    second = search_clients(world.session, world.alpha.id, "page", 2, TODAY)
    beyond = search_clients(world.session, world.alpha.id, "page", 99, TODAY)
    below = search_clients(world.session, world.alpha.id, "page", -3, TODAY)

    assert (first.total, first.pages, len(first.rows)) == (30, 2, 25)
    assert first.rows[0].client.last_name == "Page00" and not first.has_prev and first.has_next
    assert [r.client.last_name for r in second.rows] == [f"Page{n}" for n in range(25, 30)]
    assert beyond.page == 2 and [r.client.id for r in beyond.rows] == [r.client.id for r in second.rows]
    assert below.page == 1
    assert search_clients(world.session, world.alpha.id, "nobody", 5, TODAY).page == 1


def test_overlong_query_is_rejected(world: World) -> None:
    search_clients(world.session, world.alpha.id, "x" * QUERY_MAX, 1, TODAY)
    with pytest.raises(SearchRejected) as raised:
        search_clients(world.session, world.alpha.id, "x" * (QUERY_MAX + 1), 1, TODAY)
    assert raised.value.status == 400 and "100" in raised.value.message


def test_rows_carry_booking_count_and_next_departure(world: World) -> None:
    s = world.session
    agent = s.get(User, world.alice.user_id)
    client = factories.make_client(s, world.alpha, first_name="Ada", last_name="Trips")
    factories.make_booking(s, client, agent, departure=TODAY - timedelta(days=1))  # past
    factories.make_booking(s, client, agent, departure=TODAY + timedelta(days=3), status="cancelled")
    factories.make_booking(s, client, agent, departure=TODAY + timedelta(days=9))
    factories.make_booking(s, client, agent, departure=TODAY + timedelta(days=5))
    factories.make_client(s, world.alpha, first_name="Ada", last_name="Homebody")

    rows = {r.client.last_name: r for r in search_clients(s, world.alpha.id, "ada", 1, TODAY).rows}
    assert (rows["Trips"].bookings, rows["Trips"].next_departure) == (4, TODAY + timedelta(days=5))
    assert (rows["Homebody"].bookings, rows["Homebody"].next_departure) == (0, None)


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [("abc", "abd"), ("az", "a{"), ("a9", "a:"), ("x@", "xA"), ("a\U0010ffff", "b"), ("\ud7ff", "\ue000")],
)
def test_prefix_upper_is_the_next_string_after_the_prefix(prefix: str, upper: str) -> None:
    assert prefix_upper(prefix) == upper
    assert prefix < upper and not (prefix + "\U0010ffff" * 3 >= upper)


def test_the_list_sorts_by_last_activity_and_next_departure_and_filters_departures(
        people: World) -> None:
    from datetime import datetime, timezone

    from cms.models import Activity

    s = people.session
    by_name = {row.client.first_name: row.client for row in
               search_clients(s, people.alpha.id, "", 1, TODAY).rows}
    zoe, jose, anna = by_name["Zoë"], by_name["José"], by_name["Anna"]
    factories.make_booking(s, anna, departure=TODAY + timedelta(days=3))
    factories.make_booking(s, jose, departure=TODAY + timedelta(days=20))
    factories.make_booking(s, zoe, departure=TODAY + timedelta(days=1), status="cancelled")
    factories.make_booking(s, zoe, departure=TODAY - timedelta(days=5))  # already gone
    for client, day in ((jose, 2), (zoe, 9)):
        s.add(Activity(agency_id=people.alpha.id, client_id=client.id, kind="note", body="x",
                       created_at=datetime(2030, 5, day, tzinfo=timezone.utc)))
    s.commit()

    def names(**kwargs: object) -> list[str]:
        page = search_clients(s, people.alpha.id, "", 1, TODAY, **kwargs)  # type: ignore[arg-type]
        return [row.client.first_name for row in page.rows]

    assert names(sort="activity") == ["Zoë", "José", "Anna"]  # latest first, none last
    assert names(sort="departure") == ["Anna", "José", "Zoë"]  # a cancelled trip does not count
    assert names(departing=7) == ["Anna"]
    assert names(departing=30, sort="departure") == ["Anna", "José"]
    assert names(departing=0) == []
    for bad in ({"sort": "salary"}, {"departing": -1}, {"departing": 400}):
        with pytest.raises(SearchRejected):
            names(**bad)
