"""axe-core (pinned in the Makefile, from the npm registry) finds no accessibility violation on
the agent's and the admin's main pages, at 1366 px and at 390 px, light and dark."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask

from cms.extensions import db
from cms.models import Agency
from tests import factories
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.conftest import Personas, create_personas, require
from tests.plugins.test_bundled_http import bundled_app

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parents[2] / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = [{"width": 1366, "height": 820}, {"width": 390, "height": 844}]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from bundled_app(tmp_path)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


def _violations(page: Any) -> list[str]:
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")  # devtools evaluation: not under the CSP
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
        .violations.map(v => v.id + ': ' + v.nodes.slice(0, 2).map(n => n.target.join(' ')).join(', '))""")
    return list(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_accessibility_violation_on_the_main_pages(app: Flask, personas: Personas,
                                                      live_server: str, scheme: str) -> None:
    require(AXE.exists(), "axe-core (make install-dev installs it from npm)")
    require(Path(CHROMIUM).exists(), "Chromium (Debian package chromium)")
    import playwright.sync_api as playwright_api

    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        client = factories.make_client(db.session, agency, first_name="Ada", last_name="Lovelace",
                                       phone="+44 20 7946 0001")
        booking = factories.make_booking(db.session, client)
        client_id, booking_id = client.id, booking.id
    agent_pages = ["/", "/clients?q=", f"/clients/{client_id}", f"/bookings/{booking_id}", "/outbox"]
    admin_pages = ["/admin/health", "/admin/flags", "/admin/flags/plugin.mail", "/admin/plugins",
                   "/admin/plugins/softphone", "/admin/users", "/admin/tokens"]
    problems: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for viewport in VIEWPORTS:
            for user, pages in ((personas.agent_a, agent_pages), (personas.admin, admin_pages)):
                # axe is injected as a script: the test's own context lets it past the CSP.
                context = browser.new_context(viewport=viewport, bypass_csp=True,
                                              color_scheme=scheme)  # type: ignore[arg-type]
                page = context.new_page()
                log_in(page, live_server, user, personas.password)
                for path in pages:
                    page.goto(f"{live_server}{path}")
                    problems += [f"{viewport['width']} {path}: {v}" for v in _violations(page)]
                context.close()
        browser.close()
    assert problems == [], "\n".join(problems)
