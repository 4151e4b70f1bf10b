"""The flags API under /api/admin/flags, for admin tokens (or an admin's session with CSRF).

PUT takes {"enabled": bool, "rollout_percent": int, "targeting": {...}, "reason": str}: fields
left out keep their values, "reason" is required. Bad input answers 422 with a message.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from cms.app_state import state
from cms.auth.tokens import admin_api, api_actor
from cms.errors import ValidationFailed
from cms.extensions import db
from cms.flags.service import config_version, get_flag, list_flags, set_flag
from cms.jsonbody import json_body

bp = Blueprint("flags_api", __name__, url_prefix="/api/admin/flags")

CHANGES = ("enabled", "rollout_percent", "targeting")
FIELDS = (*CHANGES, "reason")


@bp.get("")
@admin_api
def list_all() -> Response:
    return jsonify({
        "flags": [flag.as_json() for flag in list_flags(db.session)],
        "version": config_version(db.session),
    })


@bp.get("/<key>")
@admin_api
def show(key: str) -> Response:
    return jsonify(get_flag(db.session, key).as_json())


@bp.put("/<key>")
@admin_api
def update(key: str) -> Response:
    changes = _parse_body(json_body('a JSON object such as {"enabled": false, "reason": "why"}'))
    flag = set_flag(db.session, api_actor(), key, **changes, notify=state().flags.changed)
    return jsonify(flag.as_json())


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {field: [message]})


def _parse_body(body: Any) -> dict[str, Any]:
    """The keyword arguments for set_flag; raises ValidationFailed naming the first problem."""
    if not isinstance(body, dict):
        raise ValidationFailed('Send a JSON object such as {"enabled": false, '
                               '"rollout_percent": 100, "reason": "why"} with Content-Type: '
                               "application/json.")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValidationFailed(f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(FIELDS)}.",
                               {name: ["Unknown field."] for name in unknown})
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise _invalid("enabled", "enabled must be true or false.")
    percent = body.get("rollout_percent")
    if "rollout_percent" in body and (isinstance(percent, bool) or not isinstance(percent, int)):
        raise _invalid("rollout_percent", "rollout_percent must be a whole number from 0 to 100.")
    if "targeting" in body and not isinstance(body["targeting"], dict):
        raise _invalid("targeting", "targeting must be an object with agents, agencies and roles lists.")
    if not isinstance(body.get("reason"), str):
        raise _invalid("reason", "reason is required: say why in 3 to 500 characters.")
    if not any(name in body for name in CHANGES):
        raise ValidationFailed(f"Nothing to change: send at least one of {', '.join(CHANGES)}.")
    return dict(body)
