"""Monitoring: Prometheus metrics, per-plugin-version time series, detectors, alerts and the
ops dashboard (docs/monitoring.md).

The rest of the code reports through three hooks, which find the current app's Monitor and never
raise: `plugin_call` (cms.plugins.service), `host_call` (cms.runtime.host) and `login`
(cms.auth.service). This module imports neither Flask nor prometheus-client at import time, so
the Flask-free plugin runtime may call it; outside an app (the SDK's harness, the CLI) the hooks
do nothing.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from cms.monitoring.monitor import Monitor

logger = logging.getLogger(__name__)

__all__ = ["current", "host_call", "init_app", "login", "plugin_call"]


def current() -> Monitor | None:
    """The Monitor of the app in context, or None (no app context, or Flask never loaded)."""
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_app_context():
        return None
    return flask.current_app.extensions.get("monitoring")  # type: ignore[no-any-return]


def plugin_call(plugin_id: str, version: str, outcome: Any, stats: Any | None = None,
                limits: Any | None = None, action: str = "") -> None:
    """Count one plugin call. `outcome`: "ok", "error" (the plugin answered ok=false) or the
    FaultKind; `stats` its CallStats (None if it never ran); `limits` the Limits it ran under;
    `action` the action called."""
    monitor = current()
    if monitor is None:
        return
    try:
        monitor.plugin_call(plugin_id, version, str(getattr(outcome, "value", outcome)), stats,
                            limits, action)
    except Exception:  # metrics never cost a plugin call its answer
        logger.exception("monitoring: could not count a call of %s %s", plugin_id, version)


def host_call(capability: str, outcome: str, plugin_id: str | None = None,
              version: str | None = None) -> None:
    """Count one host call: `outcome` "ok", the error code answered (e.g. "bad_args",
    "unavailable", "timeout") or "denied" (capability not granted)."""
    monitor = current()
    if monitor is None:
        return
    try:
        monitor.host_call(capability, outcome, plugin_id, version)
    except Exception:
        logger.exception("monitoring: could not count a host call of %s", capability)


def login(outcome: str) -> None:
    """Count one login attempt: "success", "failure" or "throttled"."""
    monitor = current()
    if monitor is None:
        return
    try:
        monitor.login(outcome)
    except Exception:
        logger.exception("monitoring: could not count a login")


def canary_evidence(plugin_id: str, canary: str | None, percent: int,
                    current_version: str) -> Any:
    """What the monitor of the app in context has seen of a running canary, as a
    cms.plugins.lifecycle.CanaryEvidence (calls so far, minimum, regression); None when there
    is no canary or no monitor."""
    from cms.plugins.lifecycle import CanaryEvidence

    monitor = current()
    if monitor is None or not canary or percent <= 0:
        return None
    try:
        calls = monitor.calls_of(plugin_id, canary)
        check = monitor.canary_check(plugin_id, canary, current_version)
    except Exception:
        logger.exception("monitoring: could not compare the canary %s %s", plugin_id, canary)
        return None
    return CanaryEvidence(calls, monitor.settings.canary_min_calls, check.message or None,
                          dict(check.signals))


def init_app(app: Flask) -> None:
    """Create the app's Monitor (after its AppState) and register /metrics, the admin pages
    /admin/health and /admin/alerts, the request hooks and the alert banner. Call it before
    the admin blueprint is registered. Gunicorn workers then call `Monitor.start()`
    (cms.lifecycle) so a thread, not the requests, flushes and evaluates."""
    from sqlalchemy.orm import Session

    from cms.extensions import db
    from cms.monitoring import views
    from cms.monitoring.monitor import Monitor

    settings = app.config["CMS_SETTINGS"]

    def tick_in_app() -> None:
        with app.app_context():
            monitor.tick(lambda: Session(db.engine))

    flags = app.extensions["cms"].flags

    def lineage() -> Any:
        from cms.plugins.state import plugin_state_of

        snapshot = flags.snapshot()
        state = plugin_state_of(snapshot.extras) if snapshot is not None else None
        return state.lineage() if state is not None else {}

    monitor = Monitor(settings.monitoring, app.extensions["cms"].redis, settings.smtp_url,
                      settings.mail_from, tick_in_app, flags.changed, lineage,
                      lambda: flags.version)
    app.extensions["monitoring"] = monitor
    views.init_app(app)
