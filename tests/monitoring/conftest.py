"""Monitoring tests: apps with the bundled plugins (and their faulty variants), fast monitor
settings, and helpers to drive calls until an alert appears."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from cms import monitoring
from cms.audit import Actor
from cms.app_state import state
from cms.extensions import db
from cms.models import Alert
from cms.monitoring.settings import MonitorSettings
from cms.plugins import lifecycle
from plugin_sdk.manifest import load_manifest
from tests.conftest import Browser, Personas, create_personas

ROOT = Path(__file__).resolve().parents[2]
WASM = ROOT / "wasm"
#: Tick often, so a test waits on the detectors for well under a second per round.
FAST = MonitorSettings(interval_s=0.2)


def monitor_settings(**changes: Any) -> MonitorSettings:
    return replace(FAST, **changes)


def bundled(tmp_path: Path, database_url: str | None = None, **settings: Any) -> Iterator[Flask]:
    """The app with the bundled plugins installed (tests/plugins/test_bundled_http.py's set-up)."""
    from tests.plugins.test_bundled_http import bundled_app

    settings.setdefault("monitoring", FAST)
    if database_url:
        settings["database_url"] = database_url
    yield from bundled_app(tmp_path, **settings)


def release_faulty(app: Flask, name: str) -> tuple[str, str]:
    """Make wasm/faulty/<name> the current version of its plugin (the good one stays the
    rollback target); returns (plugin id, version)."""
    folder = WASM / "faulty" / name
    manifest = load_manifest(folder)
    with app.app_context():
        lifecycle.register_bundled(db.session, (folder / "plugin.toml").read_text(),
                                   (folder / (manifest.module_file or "")).read_bytes(), {})
        lifecycle.promote(db.session, Actor(None, "ada.admin", None), manifest.id,
                          manifest.version, lifecycle.Release("replay of the outage"),
                          notify=state().flags.changed)
    return manifest.id, manifest.version


def alerts_of(app: Flask, kind: str | None = None, plugin_id: str | None = None) -> list[Alert]:
    with app.app_context():
        stmt = select(Alert).order_by(Alert.id)
        if kind:
            stmt = stmt.where(Alert.kind == kind)
        if plugin_id:
            stmt = stmt.where(Alert.plugin_id == plugin_id)
        found = list(db.session.scalars(stmt))
        db.session.expunge_all()
        return found


def until_alert(app: Flask, step: Callable[[], Any], kind: str, plugin_id: str | None = None,
                deadline_s: float = 90.0) -> Alert:
    """Run `step` (one call, or a page view) until an alert of `kind` exists; fail at the
    deadline (generous: this is about seconds, not a timing assertion)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        step()
        found = alerts_of(app, kind, plugin_id)
        if found:
            return found[0]
    seen = [(a.kind, a.plugin_id, a.version, a.message) for a in alerts_of(app)]
    pytest.fail(f"no {kind} alert for {plugin_id} within {deadline_s} s; alerts: {seen}")


def api(browser: Browser, plugin: str, action: str, params: dict[str, Any], token: str,
        client_id: int | None = None) -> Any:
    return browser.client.post(f"/api/plugins/{plugin}/actions/{action}", json=params,
                               query_string={"client_id": client_id} if client_id else {},
                               headers={"X-CSRFToken": token})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield from bundled(tmp_path)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


class WebhookServer:
    """A local HTTP server that records every POST; the first `fail_first` answer 500, and
    while `hold` is clear, answers wait for it (to show delivery never blocks a request)."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict[str, Any]] = []
        self.answered: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.received.append({"path": self.path, "type": self.headers["Content-Type"],
                                        "body": json.loads(body)})
                server.hold.wait(30)
                code = 500 if len(server.received) <= fail_first else status
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"{}")
                server.answered.append(code)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/hooks/cms"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer(fail_first=1)
    yield server
    server.close()
