"""The pure generator: per-index determinism, unique locators, realistic and bounded values."""

from __future__ import annotations

from datetime import timedelta
from statistics import mean

from cms.bookings.locators import LOCATOR_ALPHABET, normalize_locator
from cms.clients.rules import PREFERENCE_FIELDS, ClientInput, client_problems
from cms.models import BookingStatus, Cabin, client_search_keys
from cms.seed import generator as gen
from cms.seed import vocabulary as words


def _client(index: int) -> dict:
    return gen.client_row(index, 1, gen.BULK, gen.REFERENCE_DATE)


def test_locators_are_unique_valid_and_scattered() -> None:
    numbers = range(0, 200_000)
    locators = [gen.locator(n) for n in numbers]
    assert len(set(locators)) == len(locators)
    assert all(normalize_locator(loc) == loc for loc in locators[:2000])
    assert len(LOCATOR_ALPHABET) == 32 and not set("0O1I") & set(LOCATOR_ALPHABET)
    # Consecutive bookings do not get look-alike locators.
    assert gen.locator(8)[:3] != gen.locator(9)[:3]


def test_demo_and_bulk_locator_ranges_do_not_overlap() -> None:
    last_bulk = gen.booking_number(gen.MAX_CLIENTS, gen.MAX_BOOKINGS_PER_CLIENT - 1, gen.BULK)
    first_demo = gen.booking_number(0, 0, gen.DEMO)
    assert last_bulk < first_demo
    gen.locator(gen.booking_number(gen.MAX_CLIENTS, 7, gen.DEMO))  # still in range


def test_item_depends_only_on_its_index() -> None:
    forwards = [_client(i) for i in range(1, 30)]
    backwards = [_client(i) for i in reversed(range(1, 30))][::-1]
    assert forwards == backwards
    assert _client(7) == forwards[6]
    assert gen.agent_row(3, 1, "h") == gen.agent_row(3, 1, "h")


def test_seeded_preferences_pass_the_client_form_rules() -> None:
    """An agent editing a seeded client must not meet errors in fields they did not touch."""
    for c in (_client(i) for i in range(1, 400)):
        prefs = c["preferences"]
        data = ClientInput(first_name=c["first_name"], last_name=c["last_name"], email=c["email"],
                           phone=c["phone"] or "", **{k: prefs.get(k, "") for k in PREFERENCE_FIELDS})
        assert client_problems(data) == {}, (c, client_problems(data))
        assert data.preferences() == {k: v for k, v in prefs.items() if k in PREFERENCE_FIELDS}


def test_clients_look_real_and_carry_their_search_keys() -> None:
    clients = [_client(i) for i in range(1, 400)]
    names = {c["first_name"] for c in clients} | {c["last_name"] for c in clients}
    assert any(not name.isascii() for name in names)  # accents: José, Zoë, Müller...
    assert len({(c["first_name"], c["last_name"]) for c in clients}) > 300
    assert len({c["email"] for c in clients}) == len(clients)
    for c in clients:
        assert c["email"].split("@")[1] in words.EMAIL_DOMAINS
        assert c["email"].isascii()
        assert c["phone"] is None or c["phone"].startswith("+")
        assert c["preferences"]["home_airport"] in words.AIRPORTS
        keys = client_search_keys(c["first_name"], c["last_name"], c["email"], c["phone"])
        assert {k: c[k] for k in keys} == keys


def test_bookings_are_bounded_and_coherent() -> None:
    client = {**_client(11), "id": 99}
    agents = [5, 6, 7]
    drafts = [gen.booking_draft(client, n, gen.BULK, gen.REFERENCE_DATE, agents)
              for n in range(100, 1100)]
    earliest = gen.REFERENCE_DATE - timedelta(days=60)
    latest = gen.REFERENCE_DATE + timedelta(days=300 + 42)
    for draft in drafts:
        assert draft.booking["agent_id"] in agents
        assert draft.booking["agency_id"] == client["agency_id"]
        assert BookingStatus(draft.booking["status"])
        assert 1 <= len(draft.passengers) <= 3 and 1 <= len(draft.segments) <= 4
        assert draft.passengers[0]["first_name"] == client["first_name"]
        assert draft.segments[0]["origin"] == client["preferences"]["home_airport"]
        for segment in draft.segments:
            assert segment["carrier"] in words.NETWORK_CARRIERS + words.LOW_COST_CARRIERS
            assert segment["origin"] in words.AIRPORTS and segment["destination"] in words.AIRPORTS
            assert segment["origin"] != segment["destination"]
            assert earliest <= segment["departure_date"] <= latest
            assert Cabin(segment["cabin"]) and segment["fare"] > 0
        dates = [s["departure_date"] for s in draft.segments]
        assert dates == sorted(dates)
    statuses = [d.booking["status"] for d in drafts]
    assert statuses.count("confirmed") + statuses.count("ticketed") > len(drafts) / 2
    assert {"quoted", "held", "cancelled"} <= set(statuses)


def test_booking_counts_average_the_requested_mean() -> None:
    counts = [gen.booking_count(i, gen.BULK, 1.5) for i in range(1, 5001)]
    assert 1.4 < mean(counts) < 1.6
    assert max(counts) <= gen.MAX_BOOKINGS_PER_CLIENT
    assert [gen.booking_count(i, gen.BULK, 0) for i in range(1, 50)] == [0] * 49
