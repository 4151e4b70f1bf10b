"""Each capability's host ops through a real plugin call: results, quotas, agency walls."""

from __future__ import annotations

import socket
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.extensions import db
from cms.models import Activity, Booking, Flight, OutboxMail
from cms.models import utcnow
from cms.plugins import kv
from cms.plugins.mail import MAX_ATTEMPTS, deliver_due
from tests.conftest import Browser, Personas, create_personas
from tests.plugins.conftest import make_plugin_app
from tests.plugins.test_api import PAX, SEGMENT, calls, make_client


def answers(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["result"]["answers"]  # type: ignore[no-any-return]


def one(browser: Browser, op: str, args: dict[str, Any], **query: Any) -> dict[str, Any]:
    return answers(calls(browser, (op, args), **query))[0]


def test_kv_round_trip_and_scopes(app: Flask, personas: Personas, browser: Browser) -> None:
    client_id = make_client(app, personas.agency_a_id)
    browser.login(personas.agent_a)
    assert one(browser, "kv.set", {"key": "n", "value": {"a": [1, "é"]}}) == {"ok": True, "result": {"ok": True}}
    assert one(browser, "kv.get", {"key": "n"}) == {"ok": True, "result": {"value": {"a": [1, "é"]}}}
    assert one(browser, "kv.get", {"key": "n", "scope": "plugin"})["result"] == {"value": None}
    assert one(browser, "kv.get", {"key": "n", "scope": "client"})["error"]["code"] == "no_client"
    assert one(browser, "kv.set", {"key": "c", "value": 1, "scope": "client"}, client_id=client_id)["ok"]
    assert one(browser, "kv.list", {"prefix": ""})["result"] == {"keys": ["n"]}
    assert one(browser, "kv.delete", {"key": "n"})["result"] == {"deleted": True}
    assert one(browser, "kv.get", {"key": "n"})["result"] == {"value": None}
    assert one(browser, "kv.get", {"key": "n", "scope": "galaxy"})["error"]["code"] == "bad_args"


def test_kv_values_are_per_agent(app: Flask, personas: Personas, browser: Browser) -> None:
    browser.login(personas.agent_a)
    one(browser, "kv.set", {"key": "mine", "value": "alice"})
    one(browser, "kv.set", {"key": "shared", "value": "alpha", "scope": "plugin"})
    browser.logout()
    browser.login(personas.agent_b)  # another agency: sees neither
    assert one(browser, "kv.get", {"key": "mine"})["result"] == {"value": None}
    assert one(browser, "kv.get", {"key": "shared", "scope": "plugin"})["result"] == {"value": None}


def test_kv_quotas(app: Flask, personas: Personas, browser: Browser) -> None:
    browser.login(personas.agent_a)
    big = one(browser, "kv.set", {"key": "big", "value": "x" * (kv.MAX_VALUE_BYTES + 1)})
    assert big["error"]["code"] == "too_large"
    assert one(browser, "kv.set", {"key": "k" * 129, "value": 1})["error"]["code"] == "bad_args"


def test_clients_stay_within_the_agency(app: Flask, personas: Personas, browser: Browser) -> None:
    own = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace",
                      email="ada@example.com")
    other = make_client(app, personas.agency_b_id, first_name="Adam", last_name="Lovelace")
    browser.login(personas.agent_a)
    got = one(browser, "clients.get", {"id": own})["result"]
    assert got["name"] == "Ada Lovelace" and got["email"] == "ada@example.com"
    assert one(browser, "clients.get", {"id": other})["error"]["code"] == "not_found"
    found = one(browser, "clients.search", {"q": "lovelace"})["result"]["items"]
    assert [c["id"] for c in found] == [own]


def test_bookings_create_get_list_cancel(app: Flask, personas: Personas, browser: Browser) -> None:
    client_id = make_client(app, personas.agency_a_id)
    other = make_client(app, personas.agency_b_id)
    browser.login(personas.agent_a)
    created = one(browser, "bookings.create", {"client_id": client_id, "passengers": [PAX],
                                               "segments": [SEGMENT], "notes": "AP LON 0207"})
    booking = created["result"]
    assert booking["status"] == "held" and len(booking["locator"]) == 6
    assert booking["segments"][0] == SEGMENT and booking["passengers"][0]["last_name"] == "Smith"
    by_locator = one(browser, "bookings.get", {"locator": booking["locator"].lower()})["result"]
    assert by_locator["id"] == booking["id"]
    listed = one(browser, "bookings.list", {"client_id": client_id})["result"]["items"]
    assert [b["locator"] for b in listed] == [booking["locator"]]
    assert listed[0]["summary"].endswith(", 1 passenger"), listed[0]["summary"]
    pair = one(browser, "bookings.create", {"client_id": client_id, "segments": [SEGMENT],
                                            "passengers": [PAX, {**PAX, "first_name": "Eve"}]})
    listed = one(browser, "bookings.list", {"client_id": client_id})["result"]["items"]
    assert [b["id"] for b in listed] == [pair["result"]["id"], booking["id"]]
    assert listed[0]["summary"].endswith(", 2 passengers") and listed[1]["summary"].endswith(
        ", 1 passenger")
    # The booking is a real one: the booking page shows it.
    page = browser.get(f"/bookings/{booking['id']}").get_data(as_text=True)
    assert booking["locator"] in page and "JFK" in page
    cancelled = one(browser, "bookings.cancel", {"id": booking["id"]})["result"]
    assert cancelled["status"] == "cancelled"
    assert one(browser, "bookings.cancel", {"id": booking["id"]})["error"]["code"] == "conflict"
    assert one(browser, "bookings.create", {"client_id": other, "passengers": [PAX],
                                            "segments": [SEGMENT]})["error"]["code"] == "not_found"
    invalid = one(browser, "bookings.create", {"client_id": client_id, "passengers": [],
                                               "segments": [{"carrier": "B"}]})
    assert invalid["error"]["code"] == "invalid"
    # Every id an op is given resolves inside the agency: another agency's client is not found
    # (not an empty list), an id past 64 bits or a limit that is not a number is bad_args.
    assert one(browser, "bookings.list", {"client_id": other})["error"]["code"] == "not_found"
    for args in ({"client_id": 2**64}, {"client_id": client_id, "limit": "ten"}):
        assert one(browser, "bookings.list", args)["error"]["code"] == "bad_args", args
    assert one(browser, "clients.get", {"id": 2**63})["error"]["code"] == "bad_args"


def test_activity_lands_on_the_client_timeline(app: Flask, personas: Personas, browser: Browser) -> None:
    client_id = make_client(app, personas.agency_a_id)
    browser.login(personas.agent_a)
    added = one(browser, "activity.add", {"client_id": client_id, "kind": "call",
                                          "text": "Call 3m12s: booked", "data": {"duration_s": 192}})
    assert added["ok"]
    with app.app_context():
        entry = db.session.get(Activity, added["result"]["id"])
        assert entry is not None and entry.kind == "call" and entry.data == {"duration_s": 192, "plugin": "probe"}
    assert "Call 3m12s: booked" in browser.get(f"/clients/{client_id}").get_data(as_text=True)


def test_inventory_search(app: Flask, personas: Personas, browser: Browser) -> None:
    with app.app_context():
        for departs, seats in (("18:00", {"F": 0, "C": 0, "W": 0, "Y": 3}), ("08:30", {"F": 2, "C": 4, "W": 9, "Y": 0})):
            db.session.add(Flight(carrier="BA", flight_number="17" + departs[0], origin="JFK",
                                  destination="LHR", departure_date=date(2027, 1, 20),
                                  departs=departs, arrives="20:40", seats=seats,
                                  fares={"F": 3000.0, "C": 2000.0, "W": 900.0, "Y": 400.0}))
        db.session.commit()
    browser.login(personas.agent_a)
    flights = one(browser, "inventory.search", {"origin": "jfk", "destination": "LHR",
                                                "date": "2027-01-20"})["result"]["flights"]
    assert [f["departs"] for f in flights] == ["08:30", "18:00"]
    assert flights[0]["seats"]["C"] == 4 and flights[0]["fares"]["Y"] == 400.0
    only_y = one(browser, "inventory.search", {"origin": "JFK", "destination": "LHR",
                                               "date": "2027-01-20", "cabin": "Y"})["result"]["flights"]
    assert [f["departs"] for f in only_y] == ["18:00"]
    assert one(browser, "inventory.search", {"origin": "JF", "destination": "LHR",
                                             "date": "2027-01-20"})["error"]["code"] == "bad_args"


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"rates: EUR 1.08" if self.path == "/rates" else b"x" * 70_000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_get_only_from_the_allow_list(app: Flask, personas: Personas, browser: Browser,
                                           http_server: str) -> None:
    browser.login(personas.agent_a)
    assert one(browser, "http.get", {"url": f"{http_server}/rates"})["result"] == {
        "status": 200, "body": "rates: EUR 1.08"}
    assert one(browser, "http.get", {"url": f"{http_server}/big"})["error"]["code"] == "too_large"
    refused = one(browser, "http.get", {"url": "http://example.com/"})
    assert refused["error"] == {"code": "host_not_allowed",
                                "message": "example.com is not in this plugin's http allow-list"}
    assert one(browser, "http.get", {"url": "file:///etc/passwd"})["error"]["code"] == "bad_args"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, list[Any]]]:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                              rcpt_options: list[str]) -> str:
            if address.startswith("gone@"):
                return "550 5.1.1 no such mailbox"
            if address.startswith("full@"):
                return "452 4.2.2 mailbox full, try later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe:  # a free port (aiosmtpd checks readiness on the port it is given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", received
    controller.stop()


def test_mail_goes_to_the_outbox_without_a_relay(app: Flask, personas: Personas, browser: Browser) -> None:
    client_id = make_client(app, personas.agency_a_id)
    browser.login(personas.agent_a)
    sent = one(browser, "mail.send", {"to": "ada@example.com", "subject": "Your itinerary",
                                      "body": "Hello Ada", "client_id": client_id})
    assert sent["result"]["status"] == "queued"
    with app.app_context():
        mail = db.session.get(OutboxMail, sent["result"]["id"])
        assert mail is not None and mail.status == "queued" and mail.client_id == client_id
    bad = one(browser, "mail.send", {"to": "ada@@example", "subject": "x", "body": "y"})
    assert bad["error"]["code"] == "bad_address"


def wait_for_status(app: Flask, mail_id: int, status: str, within_s: float = 5.0) -> OutboxMail:
    """The outbox mail once the courier (its own thread) has given it `status`."""
    deadline = time.monotonic() + within_s
    while True:
        with app.app_context():
            mail = db.session.get(OutboxMail, mail_id)
            assert mail is not None
            if mail.status == status or time.monotonic() > deadline:
                assert mail.status == status
                return mail
        time.sleep(0.05)


def test_mail_reaches_a_real_smtp_server(tmp_path: Path, probe_wasm: bytes,
                                         smtp_server: tuple[str, list[Any]]) -> None:
    url, received = smtp_server
    for app in make_plugin_app(tmp_path, probe_wasm, smtp_url=url, mail_from="cms@agency.example",
                               mail_undo_s=0):
        personas = create_personas(app)
        browser = Browser(app.test_client())
        browser.login(personas.agent_a)
        sent = one(browser, "mail.send", {"to": "ada@example.com", "subject": "Booking confirmation",
                                          "body": "Your booking ABC123 is confirmed."})
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        (envelope,) = received
        assert envelope.mail_from == "cms@agency.example" and envelope.rcpt_tos == ["ada@example.com"]
        assert b"Subject: Booking confirmation" in envelope.content
        assert b"Your booking ABC123 is confirmed." in envelope.content
        assert wait_for_status(app, sent["result"]["id"], "sent").sent_at is not None
        # A mail sent by a call that then fails never leaves.
        calls(browser, ("mail.send", {"to": "x@example.com", "subject": "s", "body": "b"}), then="trap")
        time.sleep(0.2)
        assert len(received) == 1
        with app.app_context():
            assert db.session.scalar(select(OutboxMail).where(OutboxMail.to_addr == "x@example.com")) is None


def test_a_dead_relay_marks_the_mail_failed_not_the_plugin(tmp_path: Path, probe_wasm: bytes) -> None:
    for app in make_plugin_app(tmp_path, probe_wasm, smtp_url="smtp://127.0.0.1:9", mail_undo_s=0):
        personas = create_personas(app)
        browser = Browser(app.test_client())
        browser.login(personas.agent_a)
        sent = one(browser, "mail.send", {"to": "ada@example.com", "subject": "s", "body": "b"})
        assert sent["ok"]
        mail_id = sent["result"]["id"]
        deadline = time.monotonic() + 5  # the courier's first try, on its own thread
        while (mail := wait_for_status(app, mail_id, "queued")).attempts == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert mail.attempts == 1 and "Connection refused" in (mail.error or "")
        assert mail.deliver_after is not None and mail.deliver_after > utcnow()  # backing off
        # It is tried again after each backoff, then failed; the plugin's call was fine all along.
        settings = app.config["CMS_SETTINGS"]
        later = utcnow()
        for _ in range(MAX_ATTEMPTS - 1):
            later += timedelta(minutes=10)
            with app.app_context(), Session(db.engine) as session:
                assert deliver_due(session, settings.smtp_url, settings.mail_from, later) == 1
        failed = wait_for_status(app, mail_id, "failed")
        assert failed.attempts == MAX_ATTEMPTS
        assert failed.error is not None and failed.error.endswith(f"(after {MAX_ATTEMPTS} attempts)")


def test_the_outbox_shows_an_agencys_mail_to_its_agents_and_all_to_admins(
        app: Flask, personas: Personas, browser: Browser) -> None:
    browser.login(personas.agent_a)
    one(browser, "mail.send", {"to": "ada@example.com", "subject": "Alpha <itinerary>", "body": "b"})
    browser.logout()
    browser.login(personas.agent_b)
    one(browser, "mail.send", {"to": "bob@example.com", "subject": "Beta quote", "body": "b"})
    page = browser.get("/outbox").get_data(as_text=True)
    assert "Beta quote" in page and "Alpha" not in page and "No mail relay is configured" in page
    browser.logout()
    browser.login(personas.admin)
    assert "Beta quote" not in browser.get("/outbox").get_data(as_text=True)
    everyone = browser.get("/outbox?all=1").get_data(as_text=True)
    assert "Beta quote" in everyone and "Alpha &lt;itinerary&gt;" in everyone
