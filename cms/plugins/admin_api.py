"""The plugin admin API under /api/admin/plugins (admin token or admin session): upload a
package (as `cms-plugin publish` does), canary, promote, roll back, release a quarantine.

Bodies are JSON; every change needs a "reason". Errors answer {"error": {"code", "message"}}
with 401/403 (credentials), 404, 409 (gate blocked, approval needed, conflict) or 422.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from cms import monitoring
from cms.app_state import state
from cms.auth.tokens import admin_api, api_actor
from cms.errors import ValidationFailed
from cms.extensions import db
from cms.jsonbody import json_body
from cms.models import PluginInstall, PluginVersion
from cms.plugins import lifecycle
from plugin_sdk.package import MAX_PACKAGE_BYTES

bp = Blueprint("plugins_admin_api", __name__, url_prefix="/api/admin/plugins")


def version_json(row: PluginVersion) -> dict[str, Any]:
    return {"plugin_id": row.plugin_id, "version": row.version, "sha256": row.sha256,
            "source": row.source, "signer_key_id": row.signer_key_id,
            "gate_status": row.gate_status, "gate_report": row.gate_report,
            "gate_override": row.gate_override,
            "quarantined": row.quarantined_at is not None,
            "quarantine_reason": row.quarantine_reason}


def install_json(install: PluginInstall) -> dict[str, Any]:
    return {"plugin_id": install.plugin_id, "enabled": install.enabled, "version": install.version,
            "canary_version": install.canary_version, "canary_percent": install.canary_percent,
            "previous_version": install.previous_version, "granted": list(install.granted),
            "canary": _canary_json(install),
            "versions": [version_json(r) for r in lifecycle.versions(db.session, install.plugin_id)]}


def _canary_json(install: PluginInstall) -> dict[str, Any] | None:
    evidence = monitoring.canary_evidence(install.plugin_id, install.canary_version,
                                          install.canary_percent, install.version)
    if evidence is None:
        return None
    return {"calls": evidence.calls, "min_calls": evidence.min_calls,
            "promotable": evidence.promotable, "regression": evidence.regression,
            "signals": {k: {"canary": v[0], "current": v[1]} for k, v in evidence.signals.items()}}


def _body(*required: str) -> dict[str, Any]:
    body = json_body("a JSON object")
    if not isinstance(body, dict):
        raise ValidationFailed("Send a JSON object.")
    missing = [k for k in required if k not in body]
    if missing:
        raise ValidationFailed(f"Missing field: {missing[0]}.")
    return body


def _release(body: dict[str, Any]) -> lifecycle.Release:
    reason, override = body.get("reason"), body.get("override_gate")
    approve = body.get("approve_capabilities", False)
    if not isinstance(reason, str) or (override is not None and not isinstance(override, str)) \
            or not isinstance(approve, bool):
        raise ValidationFailed("reason and override_gate are strings, approve_capabilities a boolean.")
    return lifecycle.Release(reason, approve, override)


@bp.get("")
@admin_api
def list_plugins() -> Response:
    installs = db.session.scalars(db.select(PluginInstall).order_by(PluginInstall.plugin_id))
    return jsonify({"plugins": [install_json(i) for i in installs]})


@bp.post("")
@admin_api
def upload() -> tuple[Response, int]:
    """The package is the body (application/octet-stream) or the multipart field "package"."""
    upload_file = request.files.get("package")
    data = upload_file.read(MAX_PACKAGE_BYTES + 1) if upload_file else request.get_data(cache=False)
    if not data:
        raise ValidationFailed("Send the .cmsplugin package as the request body.")
    row = lifecycle.upload(db.session, api_actor(), data, state().runtime.config.caps,
                           state().runtime.config.artifact_dir)
    return jsonify(version_json(row)), 201


@bp.post("/<plugin_id>/canary")
@admin_api
def canary(plugin_id: str) -> Response:
    body = _body("version", "percent", "reason")
    if isinstance(body["percent"], bool) or not isinstance(body["percent"], int):
        raise ValidationFailed("percent is an integer from 0 to 100.")
    install = lifecycle.set_canary(db.session, api_actor(), plugin_id, str(body["version"]),
                                   body["percent"], _release(body),
                                   notify=state().flags.changed)
    return jsonify(install_json(install))


@bp.post("/<plugin_id>/promote")
@admin_api
def promote(plugin_id: str) -> Response:
    body = _body("version", "reason")
    current = lifecycle.get_install(db.session, plugin_id)
    evidence = monitoring.canary_evidence(plugin_id, current.canary_version,
                                          current.canary_percent, current.version)
    install = lifecycle.promote(db.session, api_actor(), plugin_id, str(body["version"]), _release(body),
                                notify=state().flags.changed, evidence=evidence)
    return jsonify(install_json(install))


@bp.post("/<plugin_id>/rollback")
@admin_api
def rollback(plugin_id: str) -> Response:
    body = _body("reason")
    install = lifecycle.rollback(db.session, api_actor(), plugin_id, str(body["reason"]),
                                 notify=state().flags.changed)
    return jsonify(install_json(install))


@bp.post("/<plugin_id>/versions/<version>/release-quarantine")
@admin_api
def release_quarantine(plugin_id: str, version: str) -> Response:
    body = _body("reason")
    row = lifecycle.release_quarantine(db.session, api_actor(), plugin_id, version, str(body["reason"]),
                                       notify=state().flags.changed)
    return jsonify(version_json(row))
