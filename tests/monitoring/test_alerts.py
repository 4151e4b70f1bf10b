"""Alerts end to end: a real HTTP server receives the webhook (after a retry), the admins get
mail through a real SMTP server, duplicates are suppressed, acknowledging works (with CSRF),
delivery never blocks a request, and the detectors see the calls of every worker (Redis)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select, update

from cms import create_app
from cms.extensions import db
from cms.models import AuditEvent, User
from cms.monitoring.notify import Notifier
from tests.conftest import Browser, Personas, create_personas, make_settings
from tests.monitoring.conftest import (WASM, WebhookServer, alerts_of, api, bundled,
                                       monitor_settings, release_faulty, until_alert)
from tests.monitoring.test_metrics import value
from tests.plugins.test_hostops import smtp_server  # noqa: F401  (fixture)

FAILING = ("terminal", "command", {"command": "AN20DECJFKLHR"})


def fail(browser: Browser, token: str) -> Any:
    plugin, action, params = FAILING
    return api(browser, plugin, action, params, token)


def monitor_of(app: Flask) -> Any:
    return app.extensions["monitoring"]


@pytest.fixture
def delivering(tmp_path: Path, webhook: WebhookServer,
               smtp_server: tuple[str, list[Any]]) -> Iterator[Flask]:  # noqa: F811
    settings = monitor_settings(webhooks=(webhook.url,), webhook_backoff_s=0.05)
    for app in bundled(tmp_path, smtp_url=smtp_server[0], monitoring=settings):
        yield app


def test_an_alert_reaches_the_webhook_after_a_retry_and_the_admins_by_mail(
        delivering: Flask, webhook: WebhookServer, smtp_server: tuple[str, list[Any]]) -> None:  # noqa: F811
    app = delivering
    personas = create_personas(app)
    with app.app_context():
        db.session.execute(update(User).where(User.username == personas.admin)
                           .values(email="ada@example.com"))
        db.session.commit()
    plugin_id, version = release_faulty(app, "terminal-failing")
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    token = browser.csrf("/clients")
    alert = until_alert(app, lambda: fail(browser, token), "fault_rate", plugin_id)
    assert monitor_of(app).notifier.drain(30)

    assert webhook.answered == [500, 200]  # the first delivery failed, the retry got through
    first, second = (r["body"] for r in webhook.received)
    assert first == second and webhook.received[0]["type"] == "application/json"
    assert webhook.received[0]["path"] == "/hooks/cms"
    assert first["event"] == "opened" and first["page"] == "/admin/alerts"
    body = first["alert"]
    assert (body["id"], body["kind"], body["severity"]) == (alert.id, "fault_rate", "critical")
    assert (body["plugin_id"], body["version"]) == (plugin_id, version)
    assert "trap" in body["message"]

    mails = smtp_server[1]
    assert len(mails) == 1 and mails[0].rcpt_tos == ["ada@example.com"]
    text = mails[0].content.decode()
    assert f"Subject: [CMS critical] fault rate: {plugin_id} {version}" in text
    assert "Runbook:" in text and "/admin/alerts" in text
    exposition = monitor_of(app).metrics.exposition()[0].decode()
    assert value(exposition, "cms_alert_notifications_total", channel="webhook", outcome="sent") == 1
    assert value(exposition, "cms_alert_notifications_total", channel="email", outcome="sent") == 1
    assert value(exposition, "cms_alerts_total", kind="fault_rate", severity="critical") == 1


def test_an_incident_sends_one_alert_not_thousands(
        delivering: Flask, webhook: WebhookServer) -> None:
    app = delivering
    personas = create_personas(app)
    plugin_id, version = release_faulty(app, "terminal-failing")
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    token = browser.csrf("/clients")
    until_alert(app, lambda: fail(browser, token), "fault_rate", plugin_id)
    deadline = time.monotonic() + 3  # keep the incident going for a while: 15 evaluations
    while time.monotonic() < deadline:
        fail(browser, token)
    assert monitor_of(app).notifier.drain(30)
    found = alerts_of(app, "fault_rate")
    assert len(found) == 1 and found[0].count > 3
    assert {r["body"]["alert"]["id"] for r in webhook.received} == {found[0].id}
    assert webhook.answered.count(200) == 1

    # Acknowledged (with CSRF), the same incident stays folded into it: no new alert, no mail.
    admin = Browser(app.test_client())
    admin.login(personas.admin)
    page = admin.get("/admin/alerts").get_data(as_text=True)
    assert f'data-alert-kind="fault_rate" data-alert-plugin="{plugin_id}"' in page
    refused = admin.client.post("/admin/alerts/acknowledge", data={"alert_id": found[0].id})
    assert refused.status_code == 400 and alerts_of(app)[0].acknowledged_at is None
    done = admin.post("/admin/alerts/acknowledge", {"alert_id": found[0].id}, csrf_page="/admin/alerts")
    assert done.status_code == 302
    acknowledged = alerts_of(app, "fault_rate")[0]
    assert acknowledged.acknowledged_by == personas.admin and acknowledged.acknowledged_at
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        fail(browser, token)
    assert monitor_of(app).notifier.drain(30)
    assert len(alerts_of(app, "fault_rate")) == 1
    assert len({r["body"]["alert"]["id"] for r in webhook.received}) == 1
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge"))
        assert event is not None and event.actor_name == personas.admin


def test_delivery_never_blocks_a_request(tmp_path: Path) -> None:
    server = WebhookServer()
    server.hold.clear()  # the receiver takes its time
    try:
        for app in bundled(tmp_path, monitoring=monitor_settings(webhooks=(server.url,))):
            personas = create_personas(app)
            plugin_id, _ = release_faulty(app, "terminal-failing")
            browser = Browser(app.test_client())
            browser.login(personas.agent_a)
            token = browser.csrf("/clients")
            until_alert(app, lambda: fail(browser, token), "fault_rate", plugin_id)
            # The request that raised the alert has answered; its webhook is still waiting.
            deadline = time.monotonic() + 10
            while not server.received and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(server.received) == 1 and server.answered == []
            assert browser.get("/clients").status_code == 200
            server.hold.set()
            assert monitor_of(app).notifier.drain(30) and server.answered == [200]
    finally:
        server.close()


def test_the_admin_banner_shows_open_alerts_to_admins_only(app: Flask, personas: Personas) -> None:
    plugin_id, _ = release_faulty(app, "terminal-failing")
    agent = Browser(app.test_client())
    agent.login(personas.agent_a)
    token = agent.csrf("/clients")
    until_alert(app, lambda: fail(agent, token), "fault_rate", plugin_id)
    admin = Browser(app.test_client())
    admin.login(personas.admin)
    page = admin.get("/clients").get_data(as_text=True)
    assert 'class="alert-banner is-critical"' in page and "1 open alert" in page
    assert 'href="/admin/alerts"' in page
    assert "alert-banner" not in agent.get("/clients").get_data(as_text=True)


def test_notifications_are_capped_per_minute_and_4xx_is_not_retried() -> None:
    server = WebhookServer(status=400)
    try:
        notifier = Notifier(webhooks=(server.url,), backoff_s=0.01, max_per_minute=3)
        sent = [notifier.send({"alert": {"id": n, "message": f"alert {n}"}}) for n in range(10)]
        assert sent == [True] * 3 + [False] * 7 and notifier.suppressed == 7
        assert notifier.drain(30)
        assert len(server.received) == 3  # a 400 is permanent: one attempt each
    finally:
        server.close()


@pytest.mark.redis
@pytest.mark.postgres
def test_the_detectors_see_the_calls_of_every_worker(
        tmp_path: Path, postgres_schema_url: str, redis_url: str) -> None:
    """Two apps on one database and one Redis, as two Gunicorn workers (or two hosts): each sees
    too few faults to alert alone; together they raise one alert, once."""
    # A patient Redis client: a busy test machine must not look like Redis being down (each
    # worker would then count alone, which is the designed fallback but not this test).
    settings: dict[str, Any] = {"redis_url": redis_url, "redis_socket_timeout": 5.0,
                                "quarantine_faults": 1000, "monitoring": monitor_settings(min_calls=8)}
    for first in bundled(tmp_path, postgres_schema_url, **settings):
        second = create_app(make_settings(tmp_path, postgres_schema_url, plugin_dir=WASM, **settings))
        try:
            personas = create_personas(first)
            plugin_id, version = release_faulty(first, "terminal-failing")
            browsers = [Browser(first.test_client()), Browser(second.test_client())]
            tokens = []
            for browser in browsers:
                browser.login(personas.agent_a)
                tokens.append(browser.csrf("/clients"))
            for _ in range(5):
                for browser, token in zip(browsers, tokens):
                    assert fail(browser, token).status_code == 503
            for worker in (first, second):  # neither worker alone saw enough
                assert monitor_of(worker).store.backend == "redis"
            deadline = time.monotonic() + 60
            while not alerts_of(first, "fault_rate") and time.monotonic() < deadline:
                for browser in browsers:
                    browser.get("/clients")
            found = alerts_of(first, "fault_rate")
            assert len(found) == 1, [a.message for a in alerts_of(first)]
            assert (found[0].plugin_id, found[0].version) == (plugin_id, version)
            # Counted across both workers: more than the 5 either saw alone (the detectors may
            # run between the last calls, so 8 to 10 of them).
            counted = re.match(rf"{re.escape(plugin_id)} {re.escape(version)}: (\d+) of (\d+) calls",
                               found[0].message)
            assert counted is not None, found[0].message
            assert counted.group(1) == counted.group(2) and 8 <= int(counted.group(1)) <= 10
            for _ in range(10):  # both workers keep evaluating; still one alert
                for browser in browsers:
                    browser.get("/clients")
                time.sleep(0.1)
            assert len(alerts_of(second, "fault_rate")) == 1
        finally:
            with second.app_context():
                db.session.remove()
                db.engine.dispose()
            second.extensions["cms"].runtime.close()
