"""Undo send: plugin mail waits out its sender's undo window in the outbox, and a worker's
courier (never the request) hands it to a real SMTP relay after; undo and delivery never both
win a mail, and two couriers never send one twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cms.errors import Conflict
from cms.extensions import db
from cms.models import Activity, OutboxMail, User, utcnow
from cms.plugins.mail import CLAIM_LEASE, claim_due, deliver_due, undo
from tests.conftest import Browser, Personas, create_personas
from tests.plugins.conftest import make_plugin_app
from tests.plugins.test_api import make_client
from tests.plugins.test_hostops import one, smtp_server  # noqa: F401  (fixture)

UNDO_S = 10


@pytest.fixture(params=["sqlite", "postgresql"])
def relay_app(request: pytest.FixtureRequest, tmp_path: Path, probe_wasm: bytes,
              smtp_server: tuple[str, list[Any]]) -> Iterator[tuple[Flask, list[Any]]]:
    url = request.getfixturevalue("postgres_schema_url") if request.param == "postgresql" else None
    for app in make_plugin_app(tmp_path, probe_wasm, url, smtp_url=smtp_server[0],
                               mail_undo_s=UNDO_S):
        app.extensions["cms"].courier.stop()  # rounds run by hand here, at chosen times
        app.extensions["cms"].courier.start = lambda: None  # type: ignore[method-assign]
        yield app, smtp_server[1]


def send(browser: Browser, client_id: int, subject: str) -> int:
    sent = one(browser, "mail.send", {"to": "ada@example.com", "subject": subject, "body": "b",
                                      "client_id": client_id})
    assert sent["ok"], sent
    return int(sent["result"]["id"])


def deliver_at(app: Flask, seconds_from_now: float) -> int:
    settings = app.config["CMS_SETTINGS"]
    with app.app_context(), Session(db.engine) as session:
        return deliver_due(session, settings.smtp_url, settings.mail_from,
                           utcnow() + timedelta(seconds=seconds_from_now))


def status(app: Flask, mail_id: int) -> str:
    with app.app_context():
        mail = db.session.get(OutboxMail, mail_id)
        assert mail is not None
        return mail.status


def test_mail_waits_out_the_undo_window_and_an_undo_keeps_it_from_the_relay(
        relay_app: tuple[Flask, list[Any]]) -> None:
    app, received = relay_app
    personas = create_personas(app)
    client_id = make_client(app, personas.agency_a_id)
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    kept, undone = send(browser, client_id, "Quote for Lisbon"), send(browser, client_id, "Wrong quote")
    assert deliver_at(app, 0) == 0 and received == []  # inside the window nothing leaves
    response = browser.client.post(f"/outbox/{undone}/undo", headers={"Accept": "application/json",
                                                                      "X-CSRFToken": browser.csrf("/outbox")})
    assert response.status_code == 200
    assert response.get_json() == {"id": undone, "status": "undone",
                                   "message": "Undone: the mail to ada@example.com was not sent."}
    assert deliver_at(app, UNDO_S + 1) == 1
    (envelope,) = received
    assert b"Subject: Quote for Lisbon" in envelope.content
    assert (status(app, kept), status(app, undone)) == ("sent", "undone")
    with app.app_context():  # the timeline tells what happened to the undone one
        bodies = list(db.session.scalars(select(Activity.body).where(Activity.client_id == client_id)))
        assert "Mail not sent (undone): Wrong quote" in bodies
    # Too late once it has left, and said so; undoing twice says that instead.
    late = browser.client.post(f"/outbox/{kept}/undo", headers={"Accept": "application/json",
                                                                "X-CSRFToken": browser.csrf("/outbox")})
    assert late.status_code == 409
    assert late.get_json()["error"]["message"] == ("Too late to undo: the mail to ada@example.com "
                                                   "has already gone to the relay.")
    again = browser.client.post(f"/outbox/{undone}/undo", headers={"Accept": "application/json",
                                                                   "X-CSRFToken": browser.csrf("/outbox")})
    assert again.status_code == 409 and again.get_json()["error"]["message"] == "This mail was already undone."


def test_only_the_sender_can_undo_and_the_page_flow_comes_back(relay_app: tuple[Flask, list[Any]]) -> None:
    app, _ = relay_app
    personas: Personas = create_personas(app)
    client_id = make_client(app, personas.agency_a_id)
    sender = Browser(app.test_client())
    sender.login(personas.agent_a)
    mail_id = send(sender, client_id, "Itinerary")
    for other in (personas.admin, personas.agent_b):  # another user, another agency: no such mail
        browser = Browser(app.test_client())
        browser.login(other)
        response = browser.client.post(f"/outbox/{mail_id}/undo", headers={
            "Accept": "application/json", "X-CSRFToken": browser.csrf("/outbox")})
        assert response.status_code == 404
    assert status(app, mail_id) == "queued"
    # The outbox offers the undo to its sender only, while the mail waits.
    undo_form = f'action="/outbox/{mail_id}/undo"'
    assert undo_form in sender.get("/outbox").get_data(as_text=True)
    admin = Browser(app.test_client())
    admin.login(personas.admin)
    everyone = admin.get("/outbox?all=1").get_data(as_text=True)
    assert "Itinerary" in everyone and undo_form not in everyone
    # Without script: a form post, then back to where the agent was, with the outcome said.
    token = sender.csrf(f"/clients/{client_id}")
    response = sender.client.post(f"/outbox/{mail_id}/undo", data={"csrf_token": token},
                                  headers={"Referer": f"http://localhost/clients/{client_id}"})
    assert response.status_code == 303 and response.headers["Location"] == f"/clients/{client_id}"
    page = sender.get(f"/clients/{client_id}").get_data(as_text=True)
    assert "Undone: the mail to ada@example.com was not sent." in page
    assert undo_form not in sender.get("/outbox").get_data(as_text=True)  # undone: nothing to undo
    # Without a CSRF token the undo is refused and the mail stays as it is.
    forged = Browser(app.test_client())
    forged.login(personas.agent_a)
    assert forged.client.post(f"/outbox/{mail_id}/undo").status_code == 400


def test_claims_are_exclusive_between_couriers_and_against_an_undo(
        relay_app: tuple[Flask, list[Any]]) -> None:
    app, _ = relay_app
    personas = create_personas(app)
    client_id = make_client(app, personas.agency_a_id)
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    ids = [send(browser, client_id, f"Mail {n}") for n in range(6)]
    later = utcnow() + timedelta(seconds=UNDO_S + 1)
    with app.app_context(), Session(db.engine) as one_worker, Session(db.engine) as another:
        first = claim_due(one_worker, later, limit=4)
        second = claim_due(another, later)
        assert [m.id for m in first] == ids[:4] and [m.id for m in second] == ids[4:]
        assert claim_due(one_worker, later) == []
        # A worker that died holding a claim: its mail is claimed again once the lease lapses.
        lapsed = later + CLAIM_LEASE + timedelta(seconds=1)
        assert [m.id for m in claim_due(another, lapsed)] == ids
        assert claim_due(one_worker, lapsed) == []
        sender = one_worker.scalar(select(User.id).where(User.username == personas.agent_a))
        assert sender is not None
        with pytest.raises(Conflict):  # claimed for sending: too late to undo
            undo(another, ids[0], user_id=sender, agency_id=personas.agency_a_id)


def test_a_refused_recipient_fails_alone_and_a_full_mailbox_is_tried_again(
        relay_app: tuple[Flask, list[Any]]) -> None:
    app, received = relay_app
    personas = create_personas(app)
    client_id = make_client(app, personas.agency_a_id)
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    ids = {}
    for to in ("gone@example.com", "full@example.com", "ada@example.com"):
        sent = one(browser, "mail.send", {"to": to, "subject": f"To {to}", "body": "b",
                                          "client_id": client_id})
        ids[to] = sent["result"]["id"]
    assert deliver_at(app, UNDO_S + 1) == 3
    assert [e.rcpt_tos for e in received] == [["ada@example.com"]]  # the others did not stop it
    with app.app_context():
        gone, full = (db.session.get(OutboxMail, ids[k]) for k in ("gone@example.com", "full@example.com"))
        assert gone is not None and full is not None
        assert (gone.status, gone.error) == ("failed", "the relay answered 550 5.1.1 no such mailbox")
        assert (full.status, full.attempts) == ("queued", 1)
        assert full.error == "the relay answered 452 4.2.2 mailbox full, try later"
    assert status(app, ids["ada@example.com"]) == "sent"
    assert deliver_at(app, UNDO_S + 2) == 0  # backing off: not yet


def test_mail_written_without_a_relay_stays_in_the_outbox(tmp_path: Path, probe_wasm: bytes,
                                                          smtp_server: tuple[str, list[Any]]) -> None:
    for app in make_plugin_app(tmp_path, probe_wasm):  # no relay configured
        personas = create_personas(app)
        browser = Browser(app.test_client())
        browser.login(personas.agent_a)
        mail_id = one(browser, "mail.send", {"to": "ada@example.com", "subject": "s", "body": "b"})["result"]["id"]
        with app.app_context():
            mail = db.session.get(OutboxMail, mail_id)
            assert mail is not None and (mail.status, mail.deliver_after) == ("queued", None)
        # A relay configured later does not send what was written before it, months late.
        with app.app_context(), Session(db.engine) as session:
            assert deliver_due(session, smtp_server[0], "cms@example.com",
                               utcnow() + timedelta(days=90)) == 0
        assert smtp_server[1] == []


def test_a_claim_loses_to_one_made_between_its_read_and_its_write(
        relay_app: tuple[Flask, list[Any]]) -> None:
    """The compare-and-set itself: worker A has read the due mail, worker B claims and commits,
    then A's update finds nothing to take."""
    app, _ = relay_app
    personas = create_personas(app)
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    mail_id = one(browser, "mail.send", {"to": "ada@example.com", "subject": "s", "body": "b"})["result"]["id"]
    later = utcnow() + timedelta(seconds=UNDO_S + 1)
    with app.app_context(), Session(db.engine) as a, Session(db.engine) as b:
        seen = a.execute(select(OutboxMail.status, OutboxMail.deliver_after)
                         .where(OutboxMail.id == mail_id)).one()
        a.commit()  # A read it as queued and due; B now claims it first
        assert [m.id for m in claim_due(b, later)] == [mail_id]
        taken = a.execute(update(OutboxMail).where(
            OutboxMail.id == mail_id, OutboxMail.status == seen.status,
            OutboxMail.deliver_after == seen.deliver_after).values(status="sending")).rowcount
        a.commit()
        assert taken == 0


def test_the_courier_delivers_on_its_own_thread_when_woken_and_stops(
        tmp_path: Path, probe_wasm: bytes, smtp_server: tuple[str, list[Any]]) -> None:
    import time

    for app in make_plugin_app(tmp_path, probe_wasm, smtp_url=smtp_server[0], mail_undo_s=0):
        courier = app.extensions["cms"].courier
        assert courier is not None and not courier.running()  # started by the first mail
        personas = create_personas(app)
        browser = Browser(app.test_client())
        browser.login(personas.agent_a)
        one(browser, "mail.send", {"to": "ada@example.com", "subject": "s", "body": "b"})
        assert courier.running()
        deadline = time.monotonic() + 5
        while not smtp_server[1]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        courier.stop()
        assert not courier.running()
