"""GET /metrics (Prometheus), and the admin pages /admin/health and /admin/alerts; the request
hooks that count HTTP requests and tick the monitor; the admin alert banner."""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from flask import (Blueprint, Flask, Response, current_app, flash, g, jsonify, redirect,
                   render_template, request, url_for)
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from cms.admin.views import bp as admin_bp
from cms.app_state import current_actor, state
from cms.auth.access import admin_required
from cms.errors import ValidationFailed
from cms.extensions import db
from cms.monitoring import alerts, dashboard
from cms.monitoring.monitor import Monitor

logger = logging.getLogger(__name__)

bp = Blueprint("monitoring", __name__)
BANNER_CACHE_S = 2.0


def monitor() -> Monitor:
    return current_app.extensions["monitoring"]  # type: ignore[no-any-return]


def _sessions() -> Session:
    """A session of its own, so monitoring writes never mix with the request's transaction."""
    return Session(db.engine)


# /metrics --------------------------------------------------------------------------------------

def _refuse(status: int, code: str, message: str) -> Response:
    """A JSON refusal: /metrics is read by machines, which are told, not redirected."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="cms-metrics"'
    return response


def _unauthorized(message: str) -> Response:
    return _refuse(401, "unauthorized", message)


def _allowed_network(address: str | None) -> bool:
    networks = monitor().settings.metrics_allow
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in networks)


def _refusal() -> Response | None:
    """None when the caller may read the metrics: a valid admin bearer token, an address in
    CMS_METRICS_ALLOW, or an admin's login session. Otherwise the 401 or 403 answer."""
    header = request.headers.get("Authorization")
    if header is not None:
        from cms.auth.tokens import authenticate_token

        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("Send Authorization: Bearer TOKEN (an admin API token).")
        if authenticate_token(db.session, token.strip()) is None:
            return _unauthorized("This token is not valid (unknown, revoked, expired, or not an admin's).")
        return None
    if _allowed_network(request.remote_addr):
        return None
    if not current_user.is_authenticated:
        return _unauthorized("Send an admin API token, or scrape from a network in CMS_METRICS_ALLOW.")
    if not current_user.is_admin:
        return _refuse(403, "forbidden", "Metrics are for administrators.")
    return None


def may_read_internals() -> bool:
    """Whether the caller may see worker pids, Redis state and database latency (as for
    /metrics: an admin token or session, or an address in CMS_METRICS_ALLOW)."""
    return _refusal() is None


@bp.route("/metrics")
def metrics() -> Response:
    """The Prometheus text exposition of every worker; 401 or 403 for anyone else."""
    refusal = _refusal()
    if refusal is not None:
        return refusal
    m = monitor()
    m.sample_worker(time.time(), force=True)
    body, content_type = m.metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


# Admin pages -----------------------------------------------------------------------------------

@admin_bp.route("/health")
@admin_required
def health() -> str:
    board = dashboard.build(db.session, monitor(), state().redis)
    return render_template("admin/health.html", board=board, settings=monitor().settings)


@admin_bp.route("/alerts")
@admin_required
def alerts_page() -> str:
    return render_template("admin/alerts.html", open_alerts=alerts.open_alerts(db.session),
                           recent=alerts.recent_alerts(db.session, 100))


@admin_bp.route("/alerts/acknowledge", methods=["POST"])
@admin_required
def acknowledge_alert() -> WerkzeugResponse:
    alert_id = request.form.get("alert_id", type=int)
    if not alert_id:
        raise ValidationFailed("Say which alert to acknowledge.", {"alert_id": ["Required."]})
    monitor().banner = None
    if alerts.acknowledge(db.session, current_actor(), alert_id):
        flash(f"Alert #{alert_id} acknowledged.", "success")
    else:
        flash(f"Alert #{alert_id} was already acknowledged.", "info")
    return redirect(url_for("admin.alerts_page"))


# Hooks -----------------------------------------------------------------------------------------

def _start_timer() -> None:
    g.monitoring_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    started = g.get("monitoring_started")
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        try:
            monitor().http_request(route, request.method, response.status_code,
                                   time.perf_counter() - started)
        except Exception:  # counting must never cost a request its answer
            logger.exception("could not count the request")
    return response


def _tick(exc: BaseException | None) -> None:
    if exc is None:
        monitor().maybe_tick(_sessions)


def _banner() -> dict[str, Any]:
    def alert_banner() -> alerts.Summary | None:
        """Open alerts for the admin banner (cached for two seconds per process)."""
        if not (current_user.is_authenticated and current_user.is_admin):
            return None
        m = monitor()
        now = time.monotonic()
        if m.banner is None or m.banner[0] < now:
            try:
                summary = alerts.summary(db.session)
            except Exception:
                db.session.rollback()
                logger.exception("could not read open alerts")
                return None
            m.banner = (now + BANNER_CACHE_S, summary)
        return m.banner[1]

    return {"alert_banner": alert_banner}


def init_app(app: Flask) -> None:
    """Register /metrics, the request hooks and the banner helper."""
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_count_request)
    app.teardown_request(_tick)
    app.context_processor(_banner)
