"""/admin/health renders with data: per plugin and version rates, fault kinds, latency, charts
(server-rendered SVG), rollout and quarantine state, workers, database and Redis; and a headless
Chromium screenshot of it shows the charts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from tests.browser.conftest import SCREENSHOTS, live_server, page  # noqa: F401  (fixtures)
from tests.conftest import Browser, Personas
from tests.monitoring.conftest import api, release_faulty, until_alert
from tests.plugins.test_api import make_client


def traffic(app: Flask, personas: Personas) -> tuple[str, str]:
    """Good softphone calls, then the failing terminal until its alert: data for every chart."""
    client_id = make_client(app, personas.agency_a_id, phone="+44 20 7946 0001")
    agent = Browser(app.test_client())
    agent.login(personas.agent_a)
    token = agent.csrf("/clients")
    for _ in range(12):
        assert api(agent, "softphone", "dial", {"number": "+44 20 7946 0001",
                                                "client_id": client_id}, token, client_id).status_code == 200
    for _ in range(3):
        api(agent, "terminal", "command", {"command": "HE"}, token)
    plugin_id, version = release_faulty(app, "terminal-failing")
    until_alert(app, lambda: api(agent, "terminal", "command", {"command": "AN20DECJFKLHR"}, token),
                "fault_rate", plugin_id)
    return plugin_id, version


def test_the_dashboard_shows_each_plugin_version_with_rates_charts_and_state(
        app: Flask, personas: Personas, as_user: Any) -> None:
    plugin_id, version = traffic(app, personas)
    html = as_user("ada.admin").get("/admin/health").get_data(as_text=True)
    # Rollout and quarantine state from PluginInstall / PluginVersion.
    terminal = html[html.index('data-health-plugin="terminal"'):]
    terminal = terminal[:terminal.index("</section>")]
    assert f'data-version="{version}"' in terminal and 'data-version="1.0.0"' in terminal
    assert "quarantined" in terminal and "5 faults in 60 s" in terminal
    assert "rollback to <span class=\"mono\">1.0.0</span>" in terminal
    assert "trap 5" in terminal  # faults by kind
    # Rates, latency, fuel and memory of the good softphone.
    softphone = html[html.index('data-health-plugin="softphone"'):]
    softphone = softphone[:softphone.index("</section>")]
    numbers = re.search(r'<td class="num">([\d.]+)</td>', softphone)
    assert numbers and float(numbers.group(1)) >= 12 / 5  # the dials, and toolbars on pages
    assert re.search(r"\d+ ms</td>", softphone)  # p50 and p95
    assert re.search(r"\d+(\.\d)? (KiB|MiB) <small class=\"muted\">of 4.0 MiB</small>", softphone)
    # Three charts per version; the ones with calls have drawn lines.
    assert softphone.count("<svg") == 3
    assert all(re.search(r'<polyline class="series series-\w+" points="[\d., ]+"', chart)
               for chart in softphone.split("<svg")[1:])
    assert 'class="cap"' in softphone  # the memory chart shows the cap
    # The open alert, workers, database and Redis.
    assert 'data-open-alerts="1"' in html and "fault rate" in html
    assert 'data-worker="' in html and "MiB" in html
    assert 'data-status="database"' in html and "sqlite" in html
    assert "not configured" in html  # no Redis in this app: time series per worker


@pytest.mark.browser
def test_a_screenshot_of_the_dashboard_shows_its_charts(
        app: Flask, personas: Personas, live_server: str, page: Any) -> None:  # noqa: F811
    traffic(app, personas)
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", personas.admin)
    page.fill("input[name=password]", personas.password)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/admin/health")
    assert page.locator("h1").inner_text() == "Health"
    charts = page.locator("section[data-health-plugin=softphone] svg.chart-svg")
    assert charts.count() == 3
    for i in range(3):
        chart = charts.nth(i)
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 60
        lines = chart.locator("polyline.series")
        assert lines.count() >= 1
        assert all(len(lines.nth(j).get_attribute("points") or "") > 10 for j in range(lines.count()))
        # The stroke comes from app.css (no inline style under the CSP): a drawn, coloured line.
        stroke = lines.first.evaluate("el => getComputedStyle(el).stroke")
        assert stroke not in ("none", "", "rgb(0, 0, 0)"), stroke
    SCREENSHOTS.mkdir(exist_ok=True)
    shot = SCREENSHOTS / "admin-health.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    assert not page.console_errors, page.console_errors  # nothing refused by the CSP


def test_charts_without_calls_say_so(app: Flask, personas: Personas, as_user: Any) -> None:
    html = as_user("ada.admin").get("/admin/health").get_data(as_text=True)
    mail = html[html.index('data-health-plugin="mail"'):]
    mail = mail[:mail.index("</section>")]
    assert mail.count("no calls in the last hour") == 3 and "<polyline" not in mail

