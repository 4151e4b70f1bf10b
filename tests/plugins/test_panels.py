"""Panels in the agent UI: rendered from UI blocks and escaped; a failing plugin shows its
fallback text while the rest of the page renders; form actions update their panel in place."""

from __future__ import annotations

import re

from flask import Flask

from tests.conftest import Browser, Personas
from tests.plugins.conftest import built, install
from tests.plugins.test_api import make_client
from tests.runtime import guests

BROKEN = """id = "{id}"
name = "{name}"
version = "1.0.0"
abi = 1
description = "A plugin that fails, for tests."
authors = ["CMS Team <plugins@cms.example>"]
min_cms_version = "0.1.0"
fallback = "{name} unavailable: use your desk phone"

[build]
lang = "c"
source = "x.c"

[[panels]]
slot = "client.sidebar"
action = "panel"
title = "{name}"

[[panels]]
slot = "dashboard.widget"
action = "panel"
title = "{name}"

[actions.panel]
"""


def broken(app: Flask, plugin_id: str, name: str, wasm: bytes) -> None:
    install(app, built(BROKEN.format(id=plugin_id, name=name), wasm))


def test_the_client_page_shows_the_panel_with_escaped_text(app: Flask, personas: Personas,
                                                           browser: Browser) -> None:
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="<Lovelace>")
    browser.login(personas.agent_a)
    page = browser.get(f"/clients/{client_id}").get_data(as_text=True)
    assert 'data-plugin="probe"' in page
    assert "Ada &lt;Lovelace&gt;" in page  # the client's name came back through the plugin
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold</b>" not in page
    assert 'action="/plugins/probe/actions/call"' in page
    assert f'name="__client_id" value="{client_id}"' in page


def test_a_failing_plugin_shows_its_fallback_and_the_page_still_renders(
        app: Flask, personas: Personas, browser: Browser) -> None:
    broken(app, "dialer", "Softphone", guests.returning("unreachable"))
    broken(app, "fancy", "Fancy", guests.constant(
        b'{"ok":true,"ui":[{"type":"html","html":"<script>alert(1)</script>"}]}'))
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace")
    browser.login(personas.agent_a)
    response = browser.get(f"/clients/{client_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Softphone unavailable: use your desk phone" in page
    assert 'data-fault="trap"' in page and 'data-fault="invalid_output"' in page
    assert "<script>alert(1)</script>" not in page
    assert "Ada Lovelace" in page and 'data-plugin="probe"' in page  # the rest works
    assert page.count('class="plugin-panel is-failing"') == 2
    assert page.count('class="plugin-panel"') == 1
    dashboard = browser.get("/").get_data(as_text=True)
    assert "Softphone unavailable: use your desk phone" in dashboard and "My recent clients" in dashboard


def test_a_form_action_updates_its_panel(app: Flask, personas: Personas, browser: Browser) -> None:
    client_id = make_client(app, personas.agency_a_id)
    browser.login(personas.agent_a)
    form = {"count": "5", "__client_id": str(client_id), "__slot": "client.sidebar"}
    partial = browser.post("/plugins/probe/actions/call", form, headers={"X-Partial": "1"})
    assert partial.status_code == 200
    fragment = partial.get_data(as_text=True)
    assert "count 5" in fragment and "<html" not in fragment
    full = browser.post("/plugins/probe/actions/call", form)
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert "count 5" in full.get_data(as_text=True)


def test_a_form_with_bad_params_answers_422_with_the_reason(app: Flask, personas: Personas,
                                                           browser: Browser) -> None:
    browser.login(personas.agent_a)
    response = browser.post("/plugins/probe/actions/call", {"count": "-1"}, headers={"X-Partial": "1"})
    assert response.status_code == 422
    assert "Params of call: count: -1 is less than the minimum of 0" in response.get_data(as_text=True)
    response = browser.post("/plugins/probe/actions/call", {"count": "many"}, headers={"X-Partial": "1"})
    assert response.status_code == 422 and "count must be a number." in response.get_data(as_text=True)


def test_a_faulting_form_action_shows_the_fallback(app: Flask, personas: Personas,
                                                  browser: Browser) -> None:
    browser.login(personas.agent_a)
    response = browser.post("/plugins/probe/actions/call", {"then": "trap"}, headers={"X-Partial": "1"})
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "Probe unavailable: test fallback text." in body and 'data-fault="trap"' in body
    assert re.search(r"Probe is not working right now \(trap\)", body)


def test_the_status_strip_tells_which_plugins_work(app: Flask, personas: Personas,
                                                   browser: Browser) -> None:
    broken(app, "dialer", "Softphone", guests.returning("unreachable"))
    client_id = make_client(app, personas.agency_a_id)
    browser.login(personas.agent_a)
    page = browser.get(f"/clients/{client_id}").get_data(as_text=True)
    assert re.search(r'data-plugin-status="dialer" data-state="failing"', page)
    assert re.search(r'data-plugin-status="probe" data-state="ok"', page)
    assert 'Softphone <span class="small">(failing (trap))</span>' in page


SPINNER = BROKEN.replace('[actions.panel]', '[limits]\nfuel = 1000000000\ntimeout_ms = 300\n\n[actions.panel]')
SPIN = """
  (func (export "cms_handle") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0))"""


def test_a_spinning_panel_is_deferred_past_the_page_budget_and_fetched_on_its_own(
        app: Flask, personas: Personas, browser: Browser) -> None:
    install(app, built(SPINNER.format(id="spinner", name="Spinner"), guests.module(handle=SPIN)))
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace")
    browser.login(personas.agent_a)
    for _ in range(app.config["CMS_SETTINGS"].quarantine_faults + 1):
        page = browser.get(f"/clients/{client_id}").get_data(as_text=True)
        # The page does not wait for the spinner's 300 ms deadline: a placeholder stands in.
        src = re.search(r'data-panel-src="([^"]+)"', page)
        assert src is not None
        assert src.group(1) == f"/plugins/spinner/panels/client.sidebar?client_id={client_id}"
        assert "Ada Lovelace" in page and 'data-fault=' not in page
        assert 'data-plugin="probe"' in page  # the healthy panel rendered inline
    # Running past a page's budget is not a fault: nothing counted, nothing quarantined.
    with app.app_context():
        from cms.extensions import db
        from cms.plugins.lifecycle import get_version
        assert get_version(db.session, "spinner", "1.0.0").quarantined_at is None
    assert state_of(app).plugins.health("spinner") is None
    # Fetched on its own, the panel gets its whole deadline and shows the real fault.
    panel = browser.get(src.group(1), headers={"X-Partial": "1"})
    assert panel.status_code == 503
    body = panel.get_data(as_text=True)
    assert 'data-fault="timeout"' in body and "Spinner unavailable: use your desk phone" in body
    assert "<html" not in body  # only the panel's body


def test_the_panel_endpoint_refuses_unknown_slots_and_other_agencies_clients(
        app: Flask, personas: Personas, browser: Browser) -> None:
    other = make_client(app, personas.agency_b_id)
    browser.login(personas.agent_a)
    assert browser.get("/plugins/probe/panels/nowhere").status_code == 404
    assert browser.get("/plugins/nope/panels/client.sidebar").status_code == 404
    response = browser.get(f"/plugins/probe/panels/client.sidebar?client_id={other}",
                           headers={"X-Partial": "1"})
    assert response.status_code == 404
    assert "This client does not exist." in response.get_data(as_text=True)


def state_of(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["cms"]


def test_a_timer_block_renders_its_clock_from_the_hosts_time(app: Flask, personas: Personas,
                                                             browser: Browser) -> None:
    from datetime import datetime, timedelta, timezone

    since = (datetime.now(timezone.utc) - timedelta(hours=1, minutes=2, seconds=3)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    answer = '{"ok":true,"ui":[{"type":"timer","label":"On <call>","since":"%s"}]}' % since
    broken(app, "ticker", "Ticker", guests.constant(answer.encode()))
    browser.login(personas.agent_a)
    page = browser.get("/").get_data(as_text=True)
    timer = re.search(r'<p class="pb-timer" role="timer"><span>On &lt;call&gt;</span> '
                      rf'<time datetime="{since}" data-timer="(\d+)">([0-9:]+)</time></p>', page)
    assert timer is not None, page
    seconds = int(timer.group(1))
    assert 3723 <= seconds <= 3723 + 60  # the page was rendered within a minute of `since`+1:02:03
    assert timer.group(2) == f"1:{(seconds % 3600) // 60:02d}:{seconds % 60:02d}"


def test_a_timer_on_no_real_date_is_the_plugins_fault_not_a_broken_page(
        app: Flask, personas: Personas, browser: Browser) -> None:
    answer = b'{"ok":true,"ui":[{"type":"timer","label":"On call","since":"2026-02-30T10:00:00Z"}]}'
    broken(app, "ticker", "Ticker", guests.constant(answer))
    browser.login(personas.agent_a)
    response = browser.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'data-fault="invalid_output"' in page and "data-timer" not in page
