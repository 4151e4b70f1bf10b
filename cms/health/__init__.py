"""`GET /healthz`: is the database reachable, is Redis."""

from __future__ import annotations

import os
import time

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from cms.app_state import state
from cms.extensions import csrf, db
from cms.monitoring.views import may_read_internals
from cms.redis_client import ping

bp = Blueprint("health", __name__)


def _may_read_internals() -> bool:
    try:
        return may_read_internals()
    except SQLAlchemyError:
        db.session.rollback()
        return False


@bp.route("/healthz")
@csrf.exempt
def healthz() -> tuple[Response, int]:
    """200 while the database answers (Redis down is "degraded"); 503 when the database is down.

    Anonymous callers (a load balancer) get the status only. An admin token or session, or an
    address in CMS_METRICS_ALLOW, also gets the database latency, Redis and this worker's plugin
    runtime (its pid, backend and whether its epoch ticker runs).
    """
    started = time.perf_counter()
    database: dict[str, object]
    try:
        db.session.execute(text("SELECT 1"))
        database = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    except SQLAlchemyError as error:
        db.session.rollback()
        database = {"ok": False, "error": type(error).__name__}
    app_state = state()
    redis_configured = app_state.redis is not None
    redis_ok, redis_detail = ping(app_state.redis)
    redis_report = {"configured": redis_configured, "ok": redis_ok, "detail": redis_detail}
    if not database["ok"]:
        status = "down"
    elif redis_configured and not redis_ok:
        status = "degraded"
    else:
        status = "ok"
    engines = app_state.runtime.engines
    runtime_report = {"backend": app_state.runtime.backend, "engine_pid": engines.generation,
                      "ticker_alive": engines.ticker_alive(), "pid": os.getpid()}
    code = 503 if status == "down" else 200
    # Deciding who may see the details reads tokens and sessions: never with the database down.
    if status == "down" or not _may_read_internals():
        return jsonify({"status": status}), code
    body = {"status": status, "database": database, "redis": redis_report,
            "plugin_runtime": runtime_report}
    return jsonify(body), code
