"""The bundled plugins in a real browser, from the client page: the terminal books a trip, the
softphone calls and logs the call, mail composes and sends. Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.models import Activity, Booking, OutboxMail
from tests.browser.conftest import SCREENSHOTS, log_in
from tests.browser.test_accessibility import _violations
from tests.conftest import Personas, create_personas
from tests.plugins.test_api import make_client
from tests.plugins.test_bundled_http import bundled_app

pytestmark = pytest.mark.browser


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    # A long undo window, so a slow machine never closes it while the test looks at it.
    yield from bundled_app(tmp_path, mail_undo_s=120)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


def login(page: Any, live_server: str, personas: Personas) -> None:
    log_in(page, live_server, personas.agent_a, personas.password)


def terminal_command(page: Any, command: str) -> str:
    panel = page.locator("[data-plugin=terminal]").first
    panel.locator("input[name=command]").fill(command)
    panel.locator("input[name=command]").press("Enter")
    page.wait_for_function(
        "c => [...document.querySelectorAll('[data-plugin=terminal] pre')].some(p => p.textContent.includes('> ' + c))",
        arg=command.upper())
    return str(panel.locator("pre").first.text_content())


def test_terminal_books_from_the_client_page(app: Flask, personas: Personas, live_server: str,
                                             page: Any) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace",
                            phone="+44 20 7946 0001", email="ada@example.com")
    login(page, live_server, personas)
    page.goto(f"{live_server}/clients/{client_id}")
    assert page.locator("[data-plugin=terminal]").count() >= 1
    screen = terminal_command(page, "HE")
    assert "AN20DECJFKLHR" in screen
    day = date.today() + timedelta(days=12)
    screen = terminal_command(page, f"AN{day.day:02d}{day.strftime('%b').upper()}JFKLHR")
    assert "JFK LHR" in screen
    for cabin in "YWCF":
        screen = terminal_command(page, f"SS1{cabin}1")
        if "HK1" in screen.split(f"> SS1{cabin}1")[-1]:
            break
    terminal_command(page, "NM1LOVELACE/ADA MRS")
    screen = terminal_command(page, "ER")
    page.screenshot(path=str(SCREENSHOTS / "plugins-terminal.png"), full_page=True)
    assert "REC LOC" in screen
    locator = screen.split("REC LOC ")[-1].split()[0]
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.record_locator == locator))
        assert booking is not None and booking.client_id == client_id
    # The booking it made is one click away.
    page.get_by_role("link", name=f"Open booking {locator}").click()
    page.wait_for_url(f"{live_server}/bookings/{booking.id}")
    assert locator in page.content()
    assert not page.console_errors  # type: ignore[attr-defined]


def test_the_terminal_sits_in_a_wide_dock_toggled_from_the_keyboard(
        app: Flask, personas: Personas, live_server: str, page: Any) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace")
    login(page, live_server, personas)
    page.goto(f"{live_server}/clients/{client_id}")
    # The terminal is in the full-width dock, not squeezed into the sidebar.
    assert page.locator(".dock [data-plugin=terminal]").count() == 1
    assert page.locator("aside [data-plugin=terminal]").count() == 0
    screen = terminal_command(page, "HE")
    assert "AN20DECJFKLHR" in screen
    page.screenshot(path=str(SCREENSHOTS / "plugins-terminal-dock.png"), full_page=True)
    # At least 64 monospace columns, and no help line is cut off on the right.
    fit = page.evaluate("""() => {
        const pre = document.querySelector('.dock [data-plugin=terminal] pre');
        const probe = document.createElement('span');
        probe.textContent = 'M'.repeat(64);
        pre.appendChild(probe);
        const columns = pre.clientWidth >= probe.getBoundingClientRect().width;
        probe.remove();
        return {columns, clipped: pre.scrollWidth > pre.clientWidth};
    }""")
    assert fit == {"columns": True, "clipped": False}
    # Alt+T in another field (the search box) is that field's: the dock stays as it is.
    page.locator("input[type=search]").first.press("Alt+t")
    assert page.locator("#dock-body").is_visible()
    assert page.evaluate("document.activeElement.type") == "search"
    # Alt+T closes the dock and gives focus back to its toggle; the session stays as it was.
    page.locator(".dock input[name=command]").press("Alt+t")
    assert page.locator("#dock-body").is_hidden()
    assert page.evaluate("document.activeElement.hasAttribute('data-dock-toggle')")
    assert page.get_attribute("[data-dock-toggle]", "aria-expanded") == "false"
    # Closed stays closed on the next page; Alt+T opens it at the command line, screen kept.
    page.reload()
    assert page.locator("#dock-body").is_hidden()
    page.keyboard.press("Alt+t")
    assert page.locator("#dock-body").is_visible()
    assert page.evaluate("document.activeElement.name") == "command"
    assert "> HE" in str(page.locator(".dock [data-plugin=terminal] pre").text_content())
    # On a phone the page still fits: the terminal's wide lines scroll inside it, not the page.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("(() => { const p = document.querySelector('.dock pre');"
                         " return p.scrollWidth > p.clientWidth && p.tabIndex === 0; })()")
    page.screenshot(path=str(SCREENSHOTS / "phone-terminal-dock.png"), full_page=True)
    assert not page.console_errors  # type: ignore[attr-defined]


def test_softphone_and_mail_from_the_client_page(app: Flask, personas: Personas, live_server: str,
                                                 page: Any) -> None:
    from tests import factories
    from cms.models import Agency

    SCREENSHOTS.mkdir(exist_ok=True)
    with app.app_context():
        client = factories.make_client(db.session, db.session.get(Agency, personas.agency_a_id),
                                       first_name="Ada", last_name="Lovelace",
                                       phone="+44 20 7946 0001", email="ada@example.com")
        factories.make_booking(db.session, client, locator="QX7K2M")
        client_id = client.id
    login(page, live_server, personas)
    page.goto(f"{live_server}/clients/{client_id}")

    # Softphone: click-to-call link, then call, hang up and log the call with an outcome.
    phone = page.locator("main [data-plugin=softphone]").first
    assert phone.locator("a[href^='tel:+442079460001']").count() == 1
    phone.get_by_role("button", name="Call").click()
    phone.get_by_role("button", name="Hang up").wait_for()
    # One call state everywhere: the top bar's softphone shows the same call at once.
    toolbar = page.locator("header [data-plugin=softphone]")
    toolbar.get_by_role("button", name="Hang up").wait_for()
    assert toolbar.get_attribute("data-refreshed") == "1"
    # A running timer while connected, ticking in the page (no call to the plugin).
    clock = toolbar.locator("time[data-timer]")
    assert str(clock.text_content()).startswith("00:0")
    page.wait_for_function("() => document.querySelector('header time[data-timer]').textContent >= '00:02'")
    phone.get_by_role("button", name="Hang up").click()
    phone.locator("select[name=disposition]").wait_for()
    phone.locator("select[name=disposition]").select_option("booked")
    phone.locator("textarea[name=notes]").fill("Wants the Lisbon package in May")
    phone.get_by_role("button", name="Log call").click()
    page.wait_for_function("() => document.body.textContent.includes('Call logged')")
    with app.app_context():
        call = db.session.scalar(select(Activity).where(Activity.kind == "call"))
        assert call is not None and "Wants the Lisbon package in May" in call.body

    # Mail: preview the booking confirmation, then send it; it waits in the outbox (no relay).
    mail = page.locator("main [data-plugin=mail]").first
    mail.locator("select[name=template]").select_option("confirmation")
    mail.get_by_role("button", name="Preview").click()
    mail.locator("input[name=subject]").wait_for()
    assert mail.locator("input[name=subject]").input_value() == "Booking confirmation: QX7K2M"
    # One version on screen, the one that is sent: the whole body is in view, and an edit is sent.
    body = mail.locator("textarea[name=body]")
    assert body.evaluate("t => t.scrollHeight <= t.clientHeight + 1")
    body.fill(body.input_value().replace("Kind regards,", "PS: seats 12A and 12B are held.\n\nKind regards,"))
    assert mail.locator("pre").count() == 0
    mail.get_by_role("button", name="Send this mail").click()
    page.wait_for_function("() => [...document.querySelectorAll('[data-plugin=mail]')]"
                           ".some(p => /queued|sent/i.test(p.textContent))")
    page.screenshot(path=str(SCREENSHOTS / "plugins-softphone-mail.png"), full_page=True)
    with app.app_context():
        queued = db.session.scalar(select(OutboxMail))
        assert queued is not None and queued.subject == "Booking confirmation: QX7K2M"
        assert "PS: seats 12A and 12B are held." in queued.body
    # Ten seconds to undo it, counted down; undone, it never leaves and the timeline says so.
    bar = mail.locator("[data-undo-mail]")
    assert int(str(bar.locator("[data-countdown]").text_content())) in range(100, 121)
    assert _violations(page) == []  # the undo bar and its button are readable (contrast, names)
    bar.get_by_role("button", name="Undo send").click()
    page.wait_for_function("() => document.body.textContent.includes("
                           "'Undone: the mail to ada@example.com was not sent.')")
    with app.app_context():
        db.session.expire_all()
        assert db.session.get(OutboxMail, queued.id).status == "undone"
    page.goto(f"{live_server}/clients/{client_id}")
    timeline = page.content()
    assert "Wants the Lisbon package in May" in timeline and "Booking confirmation: QX7K2M" in timeline
    assert 'Not sent (undone): Sent "Booking confirmation: QX7K2M" to ada@example.com' in timeline
    assert not page.console_errors  # type: ignore[attr-defined]


def test_an_admin_turns_a_plugin_off_and_the_agent_stops_seeing_it(
        app: Flask, personas: Personas, live_server: str, page: Any, browser_factory: Any) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace")
    login(page, live_server, personas)
    page.goto(f"{live_server}/clients/{client_id}")
    assert page.locator("main [data-plugin=terminal]").count() == 1

    admin = browser_factory()
    log_in(admin, live_server, personas.admin, personas.password)
    admin.goto(f"{live_server}/admin/flags/plugin.terminal")
    admin.check("form.flag-form input[name=state][value=off]")
    admin.fill("form.flag-form [name=reason]", "Terminal misbehaving, off while we look")
    admin.check("form.flag-form input[name=confirm_off]")
    admin.once("dialog", lambda dialog: dialog.accept())  # the kill-switch confirmation
    admin.click("form.flag-form button[type=submit]")
    admin.wait_for_load_state()
    admin.screenshot(path=str(SCREENSHOTS / "admin-flag-off.png"), full_page=True)

    page.goto(f"{live_server}/clients/{client_id}")
    assert page.locator("[data-plugin=terminal]").count() == 0
    assert page.locator("main [data-plugin=softphone]").count() == 1  # only that one went away
    assert 'data-plugin-status="terminal"' not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "agent-without-terminal.png"), full_page=True)


SLOW_HANDLE = """
  (func (export "cms_handle") (param i32 i32) (result i64)
    (local $i i32)
    (local.set $i (i32.const 160000000))
    (loop $busy (local.set $i (i32.sub (local.get $i) (i32.const 1)))
                (br_if $busy (local.get $i)))
    (i64.const {packed}))"""


def test_a_slow_panel_arrives_after_the_page(app: Flask, personas: Personas, live_server: str,
                                              page: Any) -> None:
    """A panel past the page's budget is a placeholder in the page, and the browser fills it in
    with the plugin's answer once the plugin is done."""
    from plugin_sdk.abi import pack
    from tests.plugins.conftest import built, install
    from tests.plugins.test_panels import SPINNER
    from tests.runtime import guests

    output = b'{"ok":true,"ui":[{"type":"text","text":"Slow but here"}]}'
    manifest = SPINNER.format(id="slowpoke", name="Slowpoke").replace("timeout_ms = 300",
                                                                     "timeout_ms = 5000")
    install(app, built(manifest, guests.module(handle=SLOW_HANDLE.format(packed=pack(16, len(output))),
                                               data=output)))
    client_id = make_client(app, personas.agency_a_id, first_name="Ada", last_name="Lovelace")
    login(page, live_server, personas)
    page.goto(f"{live_server}/clients/{client_id}")
    slow = page.locator("[data-plugin=slowpoke]").first
    slow.locator("text=Slow but here").wait_for(timeout=10_000)
    assert "Ada Lovelace" in page.content()
    # The page itself did not carry the panel: it came from the panel's own URL.
    html = page.evaluate("fetch(location.href).then(r => r.text())")
    assert 'data-panel-src="/plugins/slowpoke/panels/client.sidebar' in html
    assert "Slow but here" not in html
    assert page.console_errors == []
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "client-page-slow-panel.png"), full_page=True)
