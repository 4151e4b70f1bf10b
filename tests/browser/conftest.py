"""A live server in a thread and a headless Chromium page driven by Playwright."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import require

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    require(Path(CHROMIUM).exists(), "Chromium (Debian package chromium)")
    try:
        import playwright.sync_api as playwright_api
    except ImportError:  # a dev dependency: fails under CMS_REQUIRE_SERVICES=1, as CI sets
        require(False, "Playwright (pip install -e '.[dev]')")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1366, "height": 820})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.console_errors = errors  # type: ignore[attr-defined]
        contexts = [context]

        def new_page() -> Any:
            """Another person in the same browser: a fresh context (own cookies)."""
            other = browser.new_context(viewport={"width": 1366, "height": 820})
            contexts.append(other)
            return other.new_page()

        page.new_person = new_page  # type: ignore[attr-defined]
        yield page
        for each in contexts:
            each.close()
        browser.close()


@pytest.fixture
def browser_factory(page: Any) -> Any:
    """Call it to get a page for a second person (own cookies) in the same browser."""
    return page.new_person


def log_in(page: Any, live_server: str, username: str, password: str) -> None:
    """Log `username` in through the form and wait for the dashboard."""
    page.goto(f"{live_server}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
