"""Client pages through HTTP: access, search page, forms and their answers, tenancy, the dashboard."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms.extensions import db
from cms.models import Activity, Agency, AuditEvent, Client, RecentClient, User, utcnow
from tests import factories
from tests.conftest import Browser, Personas

VALID = {
    "first_name": "Zoë",
    "last_name": "Quinn",
    "email": "zoe@example.com",
    "phone": "+44 20 7946 0000",
    "seat": "window",
    "meal": "vgml",
    "frequent_flyer": "",
    "assistance": "",
    "notes": "",
}


@pytest.fixture
def alice(as_user: Any) -> Browser:
    return as_user("alice.agent")


@pytest.fixture
def alpha_client(app: Flask, personas: Personas) -> int:
    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        return factories.make_client(db.session, agency, first_name="Ana", last_name="Lima",
                                     email="ana@example.com").id


def _counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(m)) or 0
            for m in (Client, AuditEvent, Activity, RecentClient)
        )


def _client_row(app: Flask, client_id: int) -> dict[str, Any]:
    with app.app_context():
        c = db.session.get(Client, client_id)
        assert c is not None
        return {"name": c.full_name, "email": c.email, "notes": c.notes, "version": c.version,
                "preferences": c.preferences}


@pytest.mark.parametrize("url", ["/", "/clients", "/clients/new", "/clients/1", "/clients/1/edit"])
def test_pages_need_login(client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_create_redirects_to_the_new_client_page(app: Flask, alice: Browser) -> None:
    response = alice.post("/clients/new", VALID)
    assert response.status_code == 303
    client_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = alice.get(f"/clients/{client_id}").get_data(as_text=True)
    assert "Zoë Quinn was added." in page
    assert "Window" in page and "VGML" in page
    assert "Client record created" in page
    assert _client_row(app, client_id)["preferences"] == {"seat": "window", "meal": "VGML"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"first_name": "x" * 81}, "At most 80 characters."),
        ({"last_name": "   "}, "Required."),
        ({"phone": "12-34"}, "at least 6 digits"),
        ({"seat": "lap"}, "Not a valid choice"),
    ],
)
def test_invalid_new_client_is_422_and_nothing_written(
    app: Flask, alice: Browser, change: dict[str, str], message: str
) -> None:
    before = _counts(app)
    response = alice.post("/clients/new", {**VALID, **change})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in page and 'aria-invalid="true"' in page
    assert 'value="Quinn"' in page or "last_name" in change  # the agent's input is kept
    assert _counts(app) == before


def test_invalid_json_request_gets_field_errors(alice: Browser) -> None:
    response = alice.post("/clients/new", {**VALID, "email": "nope"}, headers={"Accept": "application/json"})
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["email"] == ["Enter a valid email address."]


def test_edit_form_prefills_and_saves(app: Flask, alice: Browser, alpha_client: int) -> None:
    page = alice.get(f"/clients/{alpha_client}/edit").get_data(as_text=True)
    assert 'value="Lima"' in page and 'name="version"' in page and 'value="1"' in page

    response = alice.post(f"/clients/{alpha_client}/edit",
                          {**VALID, "first_name": "Ana", "last_name": "Lima", "version": "1"})
    assert response.status_code == 303
    assert _client_row(app, alpha_client)["email"] == "zoe@example.com"
    timeline = alice.get(f"/clients/{alpha_client}").get_data(as_text=True)
    assert "Profile updated: email, phone, preferences" in timeline


def test_stale_edit_is_409_and_changes_nothing(app: Flask, alice: Browser, alpha_client: int) -> None:
    assert alice.post(f"/clients/{alpha_client}/edit",
                      {**VALID, "first_name": "Ana", "last_name": "Lima", "version": "1"}).status_code == 303
    before, counts = _client_row(app, alpha_client), _counts(app)

    response = alice.post(f"/clients/{alpha_client}/edit", {**VALID, "notes": "late edit", "version": "1"})

    assert response.status_code == 409
    assert "Someone else changed this client" in response.get_data(as_text=True)
    assert _client_row(app, alpha_client) == before and _counts(app) == counts


def test_invalid_edit_is_422_and_changes_nothing(app: Flask, alice: Browser, alpha_client: int) -> None:
    before, counts = _client_row(app, alpha_client), _counts(app)
    for change in ({"email": "broken@"}, {"last_name": ""}, {"version": ""}):
        response = alice.post(f"/clients/{alpha_client}/edit", {**VALID, "version": "1", **change})
        assert response.status_code == 422
    assert _client_row(app, alpha_client) == before and _counts(app) == counts


def test_notes(app: Flask, alice: Browser, alpha_client: int) -> None:
    response = alice.post(f"/clients/{alpha_client}/notes", {"body": "Prefers <b>aisle</b> seats"})
    assert response.status_code == 303 and response.headers["Location"].endswith("#timeline")
    page = alice.get(f"/clients/{alpha_client}").get_data(as_text=True)
    assert "Prefers &lt;b&gt;aisle&lt;/b&gt; seats" in page and "Alice Agent" in page

    counts = _counts(app)
    for body in ("", "   ", "x" * 5001):
        response = alice.post(f"/clients/{alpha_client}/notes", {"body": body})
        assert response.status_code == 422
        text = response.get_data(as_text=True)
        assert "Write something" in text or "at most 5000 characters" in text
    assert _counts(app) == counts


FOREIGN_REQUESTS = [
    ("get", "/clients/{id}", None),
    ("get", "/clients/{id}/edit", None),
    ("post", "/clients/{id}/edit", {**VALID, "version": "1"}),
    ("post", "/clients/{id}/notes", {"body": "sneaky"}),
    ("post", "/clients/{id}/notes", {"body": ""}),
]


@pytest.mark.parametrize(("method", "url", "data"), FOREIGN_REQUESTS)
def test_other_agency_gets_404_and_nothing_changes(
    app: Flask, as_user: Any, alpha_client: int, method: str, url: str, data: dict[str, str] | None
) -> None:
    bob = as_user("bob.agent")
    before, counts = _client_row(app, alpha_client), _counts(app)
    for target in (alpha_client, 999_999):
        path = url.format(id=target)
        response = bob.get(path) if method == "get" else bob.post(path, data)
        assert response.status_code == 404
        assert "Lima" not in response.get_data(as_text=True)
    assert _client_row(app, alpha_client) == before and _counts(app) == counts


def test_admin_works_on_own_agency_clients(as_user: Any, alpha_client: int) -> None:
    ada = as_user("ada.admin")
    assert ada.get(f"/clients/{alpha_client}").status_code == 200
    assert "Lima</strong>, Ana" in ada.get("/clients?q=lima").get_data(as_text=True)


def test_search_page_lists_rows_for_keyboard_navigation(alice: Browser, alpha_client: int) -> None:
    page = alice.get("/clients?q=ANA").get_data(as_text=True)
    assert "data-keynav" in page
    assert f'data-href="/clients/{alpha_client}"' in page
    assert "ana@example.com" in page and "1 result" in page


def test_search_page_edges(alice: Browser, alpha_client: int) -> None:
    assert alice.get("/clients?q=ana&page=abc").status_code == 200
    assert alice.get("/clients?q=ana&page=99").status_code == 200
    long = alice.get("/clients?q=" + "a" * 101)
    assert long.status_code == 400 and "at most 100 characters" in long.get_data(as_text=True)
    empty = alice.get("/clients?q=nobody").get_data(as_text=True)
    assert "No client matches" in empty and "/clients/new?q=nobody" in empty
    assert "Lima" in alice.get("/clients").get_data(as_text=True)


def test_search_by_locator_shows_the_list(app: Flask, alice: Browser, alpha_client: int) -> None:
    with app.app_context():
        factories.make_booking(db.session, db.session.get(Client, alpha_client), locator="ZZ9PLZ")
    response = alice.get("/clients?q=zz9plz")
    assert response.status_code == 200 and "Ana" in response.get_data(as_text=True)


def test_search_pager_keeps_the_query(app: Flask, alice: Browser, personas: Personas) -> None:
    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        for n in range(27):
            factories.make_client(db.session, agency, first_name="Kim", last_name=f"Pager{n:02d}")
    page = alice.get("/clients?q=kim").get_data(as_text=True)
    assert "Page 1 of 2" in page and "q=kim" in re.search(r'rel="next" href="([^"]+)"', page).group(1)
    assert "Pager26" in alice.get("/clients?q=kim&page=2").get_data(as_text=True)


def test_new_client_form_prefilled_from_search(alice: Browser) -> None:
    page = alice.get("/clients/new?q=Ana Maria Lima").get_data(as_text=True)
    assert 'value="Ana Maria"' in page and 'value="Lima"' in page


def test_client_page_links_bookings_and_has_plugin_slot(app: Flask, alice: Browser, alpha_client: int) -> None:
    with app.app_context():
        booking = factories.make_booking(db.session, db.session.get(Client, alpha_client), locator="LNK123")
        booking_id = booking.id
    page = alice.get(f"/clients/{alpha_client}").get_data(as_text=True)
    assert f'href="/bookings/{booking_id}"' in page and "LNK123" in page
    assert f'href="/clients/{alpha_client}/bookings/new"' in page
    assert 'data-slot="client.sidebar"' in page and "two-col" in page
    assert "LHR → JFK" in page and "EUR 420.00" in page


def test_dashboard_shows_my_recent_clients_and_departures(
    app: Flask, alice: Browser, alpha_client: int, personas: Personas
) -> None:
    alice.get(f"/clients/{alpha_client}")
    with app.app_context():
        s = db.session
        me = s.scalars(select(User).where(User.username == "alice.agent")).one()
        ada = s.scalars(select(User).where(User.username == "ada.admin")).one()
        client = s.get(Client, alpha_client)
        today = utcnow().date()
        mine = factories.make_booking(s, client, me, "MINE01", today + timedelta(days=3))
        factories.make_booking(s, client, me, "PAST01", today - timedelta(days=3))
        factories.make_booking(s, client, me, "CANC01", today + timedelta(days=3), status="cancelled")
        factories.make_booking(s, client, ada, "ADAS01", today + timedelta(days=3))
        mine_id = mine.id

    page = alice.get("/").get_data(as_text=True)

    assert "My recent clients" in page and "Lima, Ana" in page
    assert f'href="/bookings/{mine_id}"' in page and "MINE01" in page
    for other in ("PAST01", "CANC01", "ADAS01"):
        assert other not in page
    assert 'data-slot="dashboard.widget"' in page and "<kbd>/</kbd>" in page
    assert "Lima, Ana" not in as_user_page(app, "ada.admin")


def as_user_page(app: Flask, username: str) -> str:
    b = Browser(app.test_client())
    b.login(username)
    return b.get("/").get_data(as_text=True)


def test_the_client_list_offers_sort_and_departure_filter(as_user: Any) -> None:
    agent = as_user("alice.agent")
    page = agent.get("/clients?q=&sort=departure&departing=7").get_data(as_text=True)
    assert '<option value="departure" selected>Next departure</option>' in page
    assert '<option value="7" selected>7 days</option>' in page
    for bad in ("sort=salary", "departing=-3", "departing=soon", "departing=999"):
        answer = agent.get(f"/clients?{bad}")
        assert answer.status_code == 400, bad


def test_a_note_can_be_undone_once_right_after_by_its_author(app: Flask, alice: Browser,
                                                              as_user: Any) -> None:
    from datetime import timedelta

    from cms.models import Activity

    client_id = int(alice.post("/clients/new", {"first_name": "Nia", "last_name": "Undo"})
                    .headers["Location"].rsplit("/", 1)[1])
    token = alice.csrf(f"/clients/{client_id}")
    alice.client.post(f"/clients/{client_id}/notes", data={"csrf_token": token, "body": "Oops"})
    page = alice.get(f"/clients/{client_id}").get_data(as_text=True)
    assert "data-undo-note" in page and "Oops" in page
    assert "data-undo-note" not in alice.get(f"/clients/{client_id}").get_data(as_text=True)  # once
    with app.app_context():
        note = db.session.scalar(db.select(Activity).where(Activity.body == "Oops"))
        note_id = note.id
    # Someone else cannot take it back; neither can its author once the time is over.
    bob = as_user("bob.agent")
    bob_token = bob.csrf("/clients")
    assert bob.client.post(f"/clients/{client_id}/notes/{note_id}/undo",
                           data={"csrf_token": bob_token}).status_code == 404
    undone = alice.client.post(f"/clients/{client_id}/notes/{note_id}/undo", data={"csrf_token": token})
    assert undone.status_code == 303
    with app.app_context():
        assert db.session.get(Activity, note_id) is None
        from cms.models import AuditEvent

        assert db.session.scalar(db.select(AuditEvent.action).where(
            AuditEvent.action == "client.note.undo")) == "client.note.undo"
    alice.client.post(f"/clients/{client_id}/notes", data={"csrf_token": token, "body": "Kept"})
    with app.app_context():
        kept = db.session.scalar(db.select(Activity).where(Activity.body == "Kept"))
        kept.created_at = kept.created_at - timedelta(minutes=5)
        db.session.commit()
        kept_id = kept.id
    late = alice.client.post(f"/clients/{client_id}/notes/{kept_id}/undo", data={"csrf_token": token})
    assert late.status_code == 409
