"""GET /metrics: refused to anyone but admins (session or token) and allow-listed networks;
exposes the expected names and bounded labels after real calls, logins and page views."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest
from flask import Flask

from cms.audit import Actor
from cms.auth.tokens import create_token
from cms.extensions import db
from tests.conftest import Browser, Personas
from tests.monitoring.conftest import api, bundled, monitor_settings
from tests.plugins.test_api import make_client

SAMPLE = re.compile(r"^(?P<name>[a-z_:][a-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in a text exposition."""
    found = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        found.append((match["name"], labels, float(match["value"])))
    return found


def value(text: str, name: str, **labels: str) -> float:
    return sum(v for n, ls, v in samples(text) if n == name
               and all(ls.get(k) == want for k, want in labels.items()))


def test_metrics_refuse_anonymous_callers_and_agents(app: Flask, personas: Personas,
                                                     as_user: object) -> None:
    anonymous = app.test_client().get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    assert b"cms_" not in anonymous.data
    agent = as_user("alice.agent").get("/metrics")  # type: ignore[operator]
    assert agent.status_code == 403 and b"cms_" not in agent.data
    bad = app.test_client().get("/metrics", headers={"Authorization": "Bearer cms_not-a-token"})
    assert bad.status_code == 401
    basic = app.test_client().get("/metrics", headers={"Authorization": "Basic YWRhOng="})
    assert basic.status_code == 401
    admin = as_user("ada.admin").get("/metrics")  # type: ignore[operator]
    assert admin.status_code == 200 and admin.mimetype == "text/plain"


def test_an_admin_api_token_reads_the_metrics(app: Flask,
                                               personas: Personas) -> None:
    with app.app_context():
        _, token = create_token(db.session, Actor.system("test"), "ada.admin", "prometheus")
    answer = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and b"cms_http_requests_total" in answer.data


@pytest.fixture
def allow_listed(tmp_path: Path) -> Iterator[Flask]:
    yield from bundled(tmp_path, monitoring=monitor_settings(metrics_allow=("127.0.0.0/8",)))


def test_an_allow_listed_network_scrapes_without_credentials(allow_listed: Flask) -> None:
    inside = allow_listed.test_client().get("/metrics")
    assert inside.status_code == 200
    outside = allow_listed.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert outside.status_code == 401


def test_the_exposition_has_the_expected_names_and_bounded_labels(
        app: Flask, personas: Personas, browser: Browser, as_user: object) -> None:
    client_id = make_client(app, personas.agency_a_id, phone="+44 20 7946 0001")
    browser.login(personas.agent_a, password="wrong password")
    browser.login(personas.agent_a)
    token = browser.csrf("/clients")
    for _ in range(3):
        answer = api(browser, "softphone", "dial", {"number": "+44 20 7946 0001",
                                                    "client_id": client_id}, token, client_id)
        assert answer.status_code == 200
    assert browser.get(f"/clients/{client_id}").status_code == 200
    assert api(browser, "mail", "preview", {"template": "quote", "booking_id": 99999,
                                            "to": "ada@example.com"}, token).status_code in (200, 404)
    text = as_user("ada.admin").get("/metrics").get_data(as_text=True)  # type: ignore[operator]

    softphone = {"plugin": "softphone", "version": "1.0.0"}
    assert value(text, "cms_plugin_calls_total", outcome="ok", **softphone) >= 3
    assert value(text, "cms_plugin_call_duration_seconds_count", **softphone) >= 3
    assert value(text, "cms_plugin_call_fuel_count", **softphone) >= 3
    assert value(text, "cms_plugin_call_fuel_sum", **softphone) > 0
    assert value(text, "cms_plugin_call_peak_memory_bytes_bucket", le="+Inf", **softphone) >= 3
    assert value(text, "cms_plugin_memory_limit_bytes", **softphone) == 4 * 1024 * 1024
    assert value(text, "cms_plugin_host_calls_total", capability="kv", outcome="ok") > 0
    assert value(text, "cms_logins_total", outcome="failure") == 1
    assert value(text, "cms_logins_total", outcome="success") == 2  # the agent, then the admin
    # Routes are URL rules, never raw paths with ids in them.
    assert value(text, "cms_http_requests_total", route="/clients/<id:client_id>", method="GET",
                 status="200") == 1
    assert value(text, "cms_http_request_duration_seconds_count",
                 route="/api/plugins/<plugin_id>/actions/<action>", method="POST") >= 4
    assert value(text, "cms_worker_resident_memory_bytes") > 10 * 1024 * 1024
    assert value(text, "cms_worker_cpu_seconds_total") > 0
    assert "cms_worker_restarts_total" in text

    for name, labels, _ in samples(text):
        assert name.startswith("cms_"), name
        assert not any(str(client_id) == v or "/clients/" + str(client_id) in v
                       for v in labels.values()), (name, labels)
        assert set(labels) <= {"plugin", "version", "outcome", "limit", "capability", "route",
                               "method", "status", "pid", "kind", "severity", "channel", "le"}, name
    for family in re.findall(r"^# TYPE (\S+) counter$", text, re.M):
        assert family.endswith("_total"), family
    for family in re.findall(r"^# TYPE (\S+) (?:histogram|gauge)$", text, re.M):
        assert not family.endswith("_total"), family
        assert not re.search(r"_(ms|milliseconds|kb|mb|kib|mib)$", family), family


def test_every_installed_version_has_its_series_at_zero_before_its_first_call(
        app: Flask, personas: Personas, as_user: object) -> None:
    from tests.monitoring.conftest import release_faulty

    monitor = app.extensions["monitoring"]
    with app.app_context():
        monitor.ensure_plugin_series()
    text = monitor.metrics.exposition()[0].decode()
    for plugin in ("softphone", "mail", "terminal"):
        for outcome in ("ok", "error", "memory_limit", "fuel_exhausted", "trap"):
            assert f'cms_plugin_calls_total{{outcome="{outcome}",plugin="{plugin}",version="1.0.0"}} 0.0' in text
        assert f'cms_plugin_call_duration_seconds_count{{plugin="{plugin}",version="1.0.0"}} 0.0' in text
        assert f'cms_plugin_calls_near_limit_total{{limit="memory",plugin="{plugin}",version="1.0.0"}} 0.0' in text
    # A version released later has its series from the next tick on.
    plugin_id, version = release_faulty(app, "terminal-failing")
    assert f'version="{version}"' not in monitor.metrics.exposition()[0].decode()
    with app.app_context():
        monitor.tick(lambda: db.session, lead=False)
    text = monitor.metrics.exposition()[0].decode()
    assert f'cms_plugin_calls_total{{outcome="trap",plugin="{plugin_id}",version="{version}"}} 0.0' in text
