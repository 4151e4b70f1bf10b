"""Hostile input never becomes a 500: ids out of range (one URL converter, one parser), deeply
nested or huge JSON (one body parser), foreign ids in plugin params and host-op data (resolved in
the agent's agency), and Back links only to this site."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.ids import MAX_ID, parse_id
from cms.models import Activity, Agency, Booking, PluginValue, User
from cms.runtime.jsonlimit import JsonRefused, depth, loads
from tests import factories
from tests.conftest import Browser, Personas
from tests.plugins.test_bundled_http import bundled_app

HUGE = str(2**64)  # SQLite: "Python int too large to convert to SQLite INTEGER"
BEYOND = str(MAX_ID + 1)


@pytest.fixture
def app(tmp_path: Any) -> Iterator[Flask]:
    yield from bundled_app(tmp_path)


def test_every_id_in_a_path_goes_through_the_id_converter(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        assert "<int:" not in rule.rule, f"{rule.rule}: use <id:...> (cms.ids)"
    assert sum("<id:" in r.rule for r in app.url_map.iter_rules()) >= 16


@pytest.mark.parametrize("number", [HUGE, BEYOND, "0", "-1", "00"])
def test_an_id_out_of_range_in_a_path_is_404(app: Flask, personas: Personas, as_user: Any,
                                             number: str) -> None:
    agent, admin = as_user("alice.agent"), as_user("ada.admin")
    token = agent.csrf("/clients")
    for path in (f"/clients/{number}", f"/clients/{number}/edit", f"/bookings/{number}",
                 f"/bookings/{number}/edit", f"/clients/{number}/bookings/new"):
        assert agent.get(path).status_code == 404, path
    for path in (f"/clients/{number}/notes", f"/bookings/{number}/status"):
        assert agent.client.post(path, data={"csrf_token": token}).status_code == 404, path
    admin_token = admin.csrf("/admin/users")
    for path in (f"/admin/users/{number}", f"/admin/agencies/{number}"):
        assert admin.get(path).status_code == 404, path
    for path in (f"/admin/users/{number}/deactivate", f"/admin/agencies/{number}/deactivate"):
        assert admin.client.post(path, data={"csrf_token": admin_token}).status_code == 404, path


@pytest.mark.parametrize("number", [HUGE, BEYOND, "-1", "1e3", "x"])
def test_an_id_out_of_range_in_a_query_or_body_is_422_naming_it(
        app: Flask, personas: Personas, as_user: Any, number: str) -> None:
    agent = as_user("alice.agent")
    token = agent.csrf("/clients")
    page = agent.get(f"/plugins/mail?client={number}")
    assert page.status_code == 422 and "client_id must be a record id" in page.get_data(as_text=True)
    api = agent.client.post(f"/api/plugins/softphone/actions/toolbar?client_id={number}",
                            json={}, headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert api.status_code == 422
    assert api.get_json()["error"]["message"].startswith("client_id must be a record id")
    form = agent.client.post("/plugins/softphone/actions/toolbar",
                             data={"csrf_token": token, "__client_id": number})
    assert form.status_code == 422
    admin = as_user("ada.admin")
    assert admin.get(f"/admin/users/new?agency={number}").status_code == 422


def test_the_id_parser() -> None:
    assert parse_id("42", "x") == 42 and parse_id(MAX_ID, "x") == MAX_ID
    assert parse_id(None, "x") is None and parse_id("", "x") is None
    for bad in (True, 0, -5, MAX_ID + 1, "4 2", "٤٢", 1.5, "9" * 40, [1]):
        with pytest.raises(Exception, match="x must be a record id"):
            parse_id(bad, "x")


def test_json_limits_never_recurse() -> None:
    assert depth(b'{"a": ["[[[[", {"b": [1]}]}') == 4
    assert loads(b'{"a": [1, {"b": "]]]"}]}') == {"a": [1, {"b": "]]]"}]}
    for raw, message in ((b"[" * 100_000 + b"]" * 100_000, "nested deeper than 32 levels"),
                         (b"[1," * 20_000 + b"1" + b"]" * 20_000, "nested deeper"),
                         (b'"' + b"x" * 300_000 + b'"', "the limit is 262144"),
                         (b"\xff", "not UTF-8 JSON"), (b"{", "not UTF-8 JSON"),
                         # Every quote opens a string that never closes: one pass, not one per
                         # quote (which took minutes for a body this size).
                         (b'["' + b'\\"' * 100_000, "not UTF-8 JSON")):
        with pytest.raises(JsonRefused, match=message):
            loads(raw)


def test_deep_or_huge_json_bodies_are_422_everywhere(app: Flask, personas: Personas,
                                                      as_user: Any) -> None:
    agent = as_user("alice.agent")
    token = agent.csrf("/clients")
    deep = "[" * 100_000 + "]" * 100_000
    headers = {"X-CSRFToken": token, "Content-Type": "application/json"}
    answer = agent.client.post("/api/plugins/terminal/actions/command", data=deep, headers=headers)
    assert answer.status_code == 422
    assert "nested deeper than 32 levels" in answer.get_json()["error"]["message"]
    big = json.dumps({"command": "x" * 300_000})
    answer = agent.client.post("/api/plugins/terminal/actions/command", data=big, headers=headers)
    assert answer.status_code == 422 and "the limit is 262144" in answer.get_json()["error"]["message"]
    admin = as_user("ada.admin")
    admin_token = admin.csrf("/admin/flags")
    for method, path in (("put", "/api/admin/flags/plugins.all"),
                         ("post", "/api/admin/plugins/softphone/rollback")):
        answer = getattr(admin.client, method)(path, data=deep, headers={
            "X-CSRFToken": admin_token, "Content-Type": "application/json"})
        assert answer.status_code == 422, path
        assert "nested deeper" in answer.get_json()["error"]["message"]


def _foreign_booking(app: Flask, personas: Personas) -> tuple[int, int]:
    """(a client of agency B, a booking of agency B)."""
    with app.app_context():
        agency_b = db.session.get(Agency, personas.agency_b_id)
        client = factories.make_client(db.session, agency_b, first_name="Bea", last_name="Other")
        booking = factories.make_booking(db.session, client)
        return client.id, booking.id


def test_foreign_ids_in_plugin_params_never_reach_the_plugin(app: Flask, personas: Personas,
                                                             as_user: Any) -> None:
    foreign_client, foreign_booking = _foreign_booking(app, personas)
    agent = as_user("alice.agent")
    token = agent.csrf("/clients")
    headers = {"X-CSRFToken": token}
    when = (date.today() + timedelta(days=2)).strftime("%Y-%m-%d 10:00")
    callback = agent.client.post("/api/plugins/softphone/actions/schedule_callback",
                                 json={"client_id": foreign_client, "when": when}, headers=headers)
    assert callback.status_code == 404
    assert callback.get_json()["error"]["message"] == "This client does not exist."
    mail = agent.client.post("/api/plugins/mail/actions/send", headers=headers, json={
        "to": "a@example.com", "subject": "Hi", "body": "Hello", "booking_id": foreign_booking})
    assert mail.status_code in (404, 422)
    with app.app_context():
        stored = [v.value for v in db.session.scalars(select(PluginValue))]
        assert str(foreign_client) not in json.dumps(stored)
        assert all(a.data.get("booking_id") != foreign_booking
                   for a in db.session.scalars(select(Activity)))


def test_host_ops_resolve_record_ids_in_activity_data_inside_the_agency(
        app: Flask, personas: Personas) -> None:
    from cms.plugins.hostops import HANDLERS, HostContext
    from cms.runtime import CallContext, HostOpError

    _, foreign_booking = _foreign_booking(app, personas)
    with app.app_context():
        agency_a = db.session.get(Agency, personas.agency_a_id)
        own = factories.make_client(db.session, agency_a, first_name="Ada", last_name="Own")
        own_booking = factories.make_booking(db.session, own)
        alice = db.session.scalar(select(User).where(User.username == personas.agent_a))
        from cms.audit import Actor

        host = HostContext(session=db.session, plugin_id="mail", agency_id=agency_a.id,
                           actor=Actor.for_user(alice), client_id=None, http_allow=frozenset(),
                           page_client_id=None)
        call = CallContext("mail", "1.0.0", frozenset({"activity"}), 64, 1e12, {"host": host})
        args = {"client_id": own.id, "kind": "mail", "text": "sent"}
        with pytest.raises(HostOpError) as refused:
            HANDLERS["activity.add"](call, {**args, "data": {"booking_id": foreign_booking}})
        assert refused.value.code == "not_found"
        with pytest.raises(HostOpError) as bad:
            HANDLERS["activity.add"](call, {**args, "data": {"booking_id": 2**70}})
        assert bad.value.code == "bad_args"
        done = HANDLERS["activity.add"](call, {**args, "data": {"booking_id": own_booking.id}})
        assert db.session.get(Activity, done["id"]).data["booking_id"] == own_booking.id
        db.session.rollback()
        assert db.session.scalar(select(Booking.id).where(Booking.id == foreign_booking))


@pytest.mark.parametrize(("referrer", "expected"), [
    ("https://evil.example/phish", None),
    ("//evil.example/x", None),
    ("javascript:alert(1)", None),
    ("http://localhost/clients?q=ada", "/clients?q=ada"),
])
def test_back_links_stay_on_this_site(app: Flask, personas: Personas, as_user: Any,
                                      referrer: str, expected: str | None) -> None:
    agent = as_user("alice.agent")
    token = agent.csrf("/clients")
    page = agent.client.post("/plugins/softphone/actions/toolbar", data={"csrf_token": token},
                             headers={"Referer": referrer}).get_data(as_text=True)
    back = page.split('class="button" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert back == (expected or "/")
