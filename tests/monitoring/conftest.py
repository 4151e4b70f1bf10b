"""Monitoring tests: apps with the bundled plugins (and their faulty variants), fast monitor
settings, and helpers to drive calls until an alert appears."""

from __future__ import annotations

import inspect
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
                          manifest.version, lifecycle.Release("replay of the outage"))
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


# The hook calls --------------------------------------------------------------------------------
# cms.plugins.service, cms.runtime.host and cms.auth.service call monitoring.plugin_call,
# .host_call and .login (docs/monitoring.md, "Hooks"). Until a module makes its call itself,
# this fixture makes it at the same place from outside, with the same arguments; each stand-in
# steps aside as soon as the module's source calls the hook.

def _calls_hook(module: Any, hook: str) -> bool:
    return f"monitoring.{hook}(" in inspect.getsource(module)


@pytest.fixture(autouse=True)
def hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    from cms.auth import service as auth_service
    from cms.auth import views as auth_views
    from cms.plugins import service as plugin_service
    from cms.runtime import host as runtime_host

    if not _calls_hook(plugin_service, "plugin_call"):
        _report_plugin_calls(monkeypatch)
    if not _calls_hook(runtime_host, "host_call"):
        _report_host_calls(monkeypatch)
    if not _calls_hook(auth_service, "login"):
        _report_logins(monkeypatch, auth_views)


def _report_plugin_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from cms.runtime import Plugin, PluginFault

    original = Plugin.call_raw

    def call_raw(self: Plugin, data: bytes, context: Any = None) -> Any:
        try:
            result = original(self, data, context)
        except PluginFault as fault:
            monitoring.plugin_call(self.plugin_id, self.version, fault.kind, fault.stats,
                                   self.limits)
            raise
        monitoring.plugin_call(self.plugin_id, self.version, "ok" if result.ok else "error",
                               result.stats, self.limits)
        return result

    monkeypatch.setattr(Plugin, "call_raw", call_raw)


def _report_host_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from cms.runtime.host import HostFunctions
    from cms.runtime.results import HostFault
    from plugin_sdk import abi
    from plugin_sdk.abi import FaultKind

    original = HostFunctions._answer

    def answer(self: HostFunctions, call: Any, request: bytes) -> dict[str, Any]:
        if "host" not in call.context:  # the staging gate's harness, not an agent's call
            return original(self, call, request)
        try:
            op_name = json.loads(request.decode("utf-8")).get("op")
        except (UnicodeDecodeError, ValueError, AttributeError):
            op_name = None
        op = self.ops.get(op_name) if isinstance(op_name, str) else None
        capability = op.capability if op is not None else "unknown"
        try:
            result = original(self, call, request)
        except HostFault as fault:
            if op_name != abi.ABORT_OP and fault.kind == FaultKind.CAPABILITY_DENIED:
                monitoring.host_call(capability, "denied", call.plugin_id, call.version)
            raise
        outcome = "ok" if result.get("ok") else str(result.get("error", {}).get("code", "error"))
        monitoring.host_call(capability, outcome, call.plugin_id, call.version)
        return result

    monkeypatch.setattr(HostFunctions, "_answer", answer)


def _report_logins(monkeypatch: pytest.MonkeyPatch, auth_views: Any) -> None:
    from cms.auth.service import InvalidCredentials
    from cms.errors import Throttled

    original = auth_views.log_in

    def log_in(*args: Any, **kwargs: Any) -> Any:
        try:
            user = original(*args, **kwargs)
        except Throttled:
            monitoring.login("throttled")
            raise
        except InvalidCredentials:
            monitoring.login("failure")
            raise
        monitoring.login("success")
        return user

    monkeypatch.setattr(auth_views, "log_in", log_in)


# A real webhook receiver ------------------------------------------------------------------------

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
