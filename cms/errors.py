"""Domain errors raised by services, and the one place that maps them to HTTP answers.

Every error answers HTML or JSON by what the client accepts; none becomes a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of the errors services raise; `status` and `code` decide the HTTP answer."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    """The record does not exist or belongs to another agency (never say which)."""

    status = 404
    code = "not_found"
    title = "Not found"


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class Conflict(DomainError):
    """The change clashes with the current state (duplicate, or edited by someone else)."""

    status = 409
    code = "conflict"
    title = "Conflict"


class ValidationFailed(DomainError):
    """Input was rejected; `fields` maps field names to messages."""

    status = 422
    code = "invalid"
    title = "Please check your input"

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, fields=fields or {})
        self.fields = fields or {}


class Throttled(DomainError):
    """Too many attempts; `retry_after` is in seconds."""

    status = 429
    code = "throttled"
    title = "Too many attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


def wants_json() -> bool:
    """True when the client prefers JSON (API paths, JSON bodies, or an Accept header)."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes[
        "text/html"
    ]


def error_response(
    status: int, code: str, title: str, message: str, extra: dict[str, Any] | None = None
) -> Response:
    """Build the HTML or JSON answer for an error."""
    if wants_json():
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if extra:
            body["error"].update(extra)
        response = jsonify(body)
    else:
        response = Response(
            render_template("errors/error.html", status=status, title=title, message=message),
            mimetype="text/html",
        )
    response.status_code = status
    return response


def _domain_error(error: DomainError) -> Response:
    extra = {k: v for k, v in error.details.items() if v}
    response = error_response(error.status, error.code, error.title, error.message, extra)
    if isinstance(error, Throttled):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _csrf_error(error: CSRFError) -> Response:
    return error_response(
        400,
        "csrf_failed",
        "Form expired",
        "This form was not sent from this site or has expired. Reload the page and try again.",
    )


def _stale_data(error: StaleDataError) -> Response:
    from cms.extensions import db

    db.session.rollback()
    return error_response(
        409,
        "conflict",
        "Changed by someone else",
        "Someone else changed this record while you were editing. Reload it and apply your change again.",
    )


def _http_error(error: HTTPException) -> Response:
    return error_response(
        error.code or 500,
        (error.name or "error").lower().replace(" ", "_"),
        error.name or "Error",
        error.description or "",
    )


def _unexpected(error: Exception) -> Response:
    from cms.extensions import db

    db.session.rollback()
    logger.exception("unhandled error (request id %s)", g.get("request_id"))
    return error_response(
        500,
        "internal_error",
        "Something went wrong",
        f"The error was logged with request id {g.get('request_id', '-')}. Your data was not changed.",
    )


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(StaleDataError, _stale_data)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
