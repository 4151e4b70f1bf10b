"""The admin console during an incident, in Chromium: /admin/health refreshes itself under the
CSP (no reload) and says when it shows one worker only; a kill switch shows live on how many
workers it is applied; the plugins list shows each plugin's state at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.conftest import Personas, create_personas
from tests.plugins.test_bundled_http import bundled_app

pytestmark = pytest.mark.browser


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from bundled_app(tmp_path)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


def admin_login(page: Any, live_server: str, personas: Personas) -> None:
    log_in(page, live_server, personas.admin, personas.password)


def test_health_refreshes_itself_and_a_kill_switch_shows_where_it_is_applied(
        app: Flask, personas: Personas, live_server: str, page: Any) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    admin_login(page, live_server, personas)
    page.goto(f"{live_server}/admin/health")
    assert page.locator("[data-single-worker]").is_visible()  # no Redis in this app
    live = page.locator("#health-live")
    assert live.get_attribute("data-refreshed") is None
    page.wait_for_function("() => document.getElementById('health-live').hasAttribute('data-refreshed')",
                           timeout=15_000)
    assert page.url == f"{live_server}/admin/health"  # replaced in place, not reloaded
    assert page.console_errors == []  # nothing the CSP refused

    page.goto(f"{live_server}/admin/flags/plugin.terminal")
    page.check("form.flag-form input[name=state][value=off]")
    page.fill("form.flag-form [name=reason]", "Terminal misbehaving, off while we look")
    page.check("form.flag-form input[name=confirm_off]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("form.flag-form button[type=submit]")
    page.wait_for_load_state()
    applied = page.locator("[data-applied]")
    page.wait_for_function(
        "() => document.querySelector('[data-applied]').getAttribute('data-poll-done') === 'true'",
        timeout=15_000)
    assert applied.text_content().startswith("applied on 1 of 1 worker")
    page.screenshot(path=str(SCREENSHOTS / "admin-kill-switch-applied.png"), full_page=True)

    page.goto(f"{live_server}/admin/plugins")
    terminal = page.locator("[data-plugins-glance] tr[data-plugin=terminal]")
    assert "off: killed" in terminal.locator("[data-switch]").text_content()
    assert "gate passed" in terminal.text_content()
    softphone = page.locator("[data-plugins-glance] tr[data-plugin=softphone]")
    assert softphone.locator("[data-switch]").text_content().strip() == "on"
    page.screenshot(path=str(SCREENSHOTS / "admin-plugins-glance.png"), full_page=True)
    page.goto(f"{live_server}/admin/plugins/softphone")
    assert page.locator("button:has-text('Roll back')").is_disabled()
    assert page.locator("#no-rollback").is_visible()
    assert page.locator("select[name=version] option").count() == 0  # only the current one
    assert page.locator("[data-nothing-to-release]").is_visible()


def test_a_kill_switch_is_one_action_from_the_flags_list_checked_before_the_dialog(
        app: Flask, personas: Personas, live_server: str, page: Any) -> None:
    admin_login(page, live_server, personas)
    page.goto(f"{live_server}/admin/flags")
    row = page.locator("tr[data-flag='plugin.mail']")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    row.locator("button:has-text('Turn off')").click()
    # No reason: the browser says so, and no confirmation was asked for yet.
    assert dialogs == [] and page.url == f"{live_server}/admin/flags"
    assert row.locator("input[name=reason]").evaluate("el => !el.validity.valid")
    row.locator("input[name=reason]").fill("Mail relay down: mail off for now")
    row.locator("button:has-text('Turn off')").click()
    page.wait_for_url(f"{live_server}/admin/flags/plugin.mail")
    assert dialogs == ["Turn plugin.mail off for every agent at once?"]
    assert page.locator("[data-flag-state]").text_content().strip() == "Off"
    # At the top of the flag page: the same switch, now to turn it back on.
    top = page.locator(".kill-switch-top")
    assert top.locator("button").text_content().strip() == "Turn back on"
    with app.app_context():
        from cms.extensions import db
        from cms.flags.service import get_flag

        flag = get_flag(db.session, "plugin.mail")
        assert flag.enabled is False and flag.rollout_percent == 100
        assert flag.targeting == {"agents": [], "agencies": [], "roles": []}
