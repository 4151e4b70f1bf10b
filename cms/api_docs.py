"""GET /api/openapi.json: the JSON API as an OpenAPI 3.1 document.

The plugin actions are described from the installed plugins' own manifests (each action's
params schema is its request body), the admin flag and plugin APIs from the shapes their views
accept and answer, and /healthz and /metrics with their access rules. tests/test_openapi.py
checks the document against the app's routes (so it cannot drift) and runs schemathesis
against it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.extensions import csrf, db
from cms.ids import MAX_ID

bp = Blueprint("api_docs", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
OBJECT: dict[str, Any] = {"type": "object"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Bad request", 401: "No or bad credentials", 403: "Not allowed",
            404: "No such record", 409: "Conflicts with the current state",
            413: "Too large", 422: "Invalid input", 429: "Throttled",
            503: "A plugin or a dependency is unavailable"}
    return {str(s): _json(ERROR, text[s]) for s in statuses}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


RELEASE: dict[str, Any] = {
    "type": "object", "required": ["version", "reason"],
    "properties": {"version": {"type": "string", "maxLength": 64},
                   "reason": {"type": "string", "minLength": 3, "maxLength": 500},
                   "override_gate": {"type": ["string", "null"], "maxLength": 500},
                   "approve_capabilities": {"type": "boolean"}}}
REASON: dict[str, Any] = {"type": "object", "required": ["reason"],
                          "properties": {"reason": {"type": "string", "minLength": 3,
                                                    "maxLength": 500}}}
ADMIN = [{"bearer": []}, {"session": []}]


def _admin_paths() -> dict[str, Any]:
    install = {"$ref": "#/components/schemas/Install"}
    plugin_id = {"name": "plugin_id", "in": "path", "required": True,
                 "schema": {"type": "string", "maxLength": 32}}
    return {
        "/api/admin/flags": {"get": {
            "summary": "Every feature flag and the config version", "security": ADMIN,
            "responses": {"200": _json({"type": "object", "required": ["flags", "version"],
                                        "properties": {"flags": {"type": "array", "items": {
                                            "$ref": "#/components/schemas/Flag"}},
                                            "version": {"type": "integer"}}}, "The flags"),
                          **_errors(401, 403)}}},
        "/api/admin/flags/{key}": {
            "parameters": [{"name": "key", "in": "path", "required": True,
                            "schema": {"type": "string", "maxLength": 64}}],
            "get": {"summary": "One flag", "security": ADMIN,
                    "responses": {"200": _json({"$ref": "#/components/schemas/Flag"}, "The flag"),
                                  **_errors(401, 403, 404)}},
            "put": {"summary": "Change a flag (fields left out keep their values)",
                    "security": ADMIN,
                    "requestBody": _body({"type": "object", "required": ["reason"],
                                          "additionalProperties": False,
                                          "anyOf": [{"required": ["enabled"]},
                                                    {"required": ["rollout_percent"]},
                                                    {"required": ["targeting"]}],
                                          "properties": {
                                              "enabled": {"type": "boolean"},
                                              "rollout_percent": {"type": "integer",
                                                                  "minimum": 0, "maximum": 100},
                                              "targeting": {
                                                  "type": "object",
                                                  "additionalProperties": False,
                                                  "properties": {
                                                      "agents": {"type": "array", "maxItems": 500,
                                                                 "items": {"type": "string"}},
                                                      "agencies": {"type": "array",
                                                                   "maxItems": 500},
                                                      "roles": {"type": "array", "items": {
                                                          "enum": ["agent", "admin"]}}}},
                                              "reason": {"type": "string", "minLength": 3,
                                                         "maxLength": 500}}}),
                    "responses": {"200": _json({"$ref": "#/components/schemas/Flag"}, "Changed"),
                                  **_errors(401, 403, 404, 409, 422)}}},
        "/api/admin/plugins": {
            "get": {"summary": "Every installed plugin with its versions", "security": ADMIN,
                    "responses": {"200": _json({"type": "object", "required": ["plugins"],
                                                "properties": {"plugins": {
                                                    "type": "array", "items": install}}},
                                               "The installs"), **_errors(401, 403)}},
            "post": {"summary": "Upload a signed .cmsplugin package (runs the staging gate)",
                     "security": ADMIN,
                     "requestBody": {"required": True, "content": {
                         "application/octet-stream": {"schema": {"type": "string",
                                                                 "format": "binary"}}}},
                     "responses": {"201": _json({"$ref": "#/components/schemas/Version"},
                                                "Uploaded"),
                                   **_errors(401, 403, 409, 413, 422)}}},
        "/api/admin/plugins/{plugin_id}/canary": {"post": {
            "summary": "Send a percentage of agents to a version (0 ends the canary)",
            "security": ADMIN, "parameters": [plugin_id],
            "requestBody": _body({**RELEASE, "required": ["version", "percent", "reason"],
                                  "properties": {**RELEASE["properties"], "percent": {
                                      "type": "integer", "minimum": 0, "maximum": 100}}}),
            "responses": {"200": _json(install, "The install"),
                          **_errors(401, 403, 404, 409, 422)}}},
        "/api/admin/plugins/{plugin_id}/promote": {"post": {
            "summary": "Make a version current for every agent (a canary only after its "
                       "minimum calls without a regression)",
            "security": ADMIN, "parameters": [plugin_id], "requestBody": _body(RELEASE),
            "responses": {"200": _json(install, "The install"),
                          **_errors(401, 403, 404, 409, 422)}}},
        "/api/admin/plugins/{plugin_id}/rollback": {"post": {
            "summary": "End the canary, or go back to the previous version",
            "security": ADMIN, "parameters": [plugin_id], "requestBody": _body(REASON),
            "responses": {"200": _json(install, "The install"),
                          **_errors(401, 403, 404, 409, 422)}}},
        "/api/admin/plugins/{plugin_id}/versions/{version}/release-quarantine": {"post": {
            "summary": "Release a quarantined version", "security": ADMIN,
            "parameters": [plugin_id, {"name": "version", "in": "path", "required": True,
                                       "schema": {"type": "string", "maxLength": 64}}],
            "requestBody": _body(REASON),
            "responses": {"200": _json({"$ref": "#/components/schemas/Version"}, "Released"),
                          **_errors(401, 403, 404, 409, 422)}}},
    }


def _platform_paths() -> dict[str, Any]:
    return {
        "/healthz": {"get": {
            "summary": "Is the database reachable, is Redis. Anonymous callers get the status "
                       "only; admins and CMS_METRICS_ALLOW networks get the details.",
            "security": [{}, *ADMIN],
            "responses": {
                "200": _json({"type": "object", "required": ["status"], "properties": {
                    "status": {"enum": ["ok", "degraded"]}, "database": OBJECT,
                    "redis": OBJECT, "plugin_runtime": OBJECT}}, "Up (degraded without Redis)"),
                "503": _json({"type": "object", "required": ["status"],
                              "properties": {"status": {"const": "down"}}}, "Database down")}}},
        "/metrics": {"get": {
            "summary": "The Prometheus text exposition of every worker",
            "security": ADMIN,
            "responses": {"200": {"description": "Metrics", "content": {
                "text/plain": {"schema": {"type": "string"}}}}, **_errors(401, 403)}}},
    }


def _action_paths(manifests: list[Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for manifest in manifests:
        for name, action in sorted(manifest.actions.items()):
            paths[f"/api/plugins/{manifest.id}/actions/{name}"] = {"post": {
                "summary": f"{manifest.name}: {action.description}",
                "tags": ["plugin actions"], "security": [{"session": []}],
                "parameters": [{"name": "client_id", "in": "query", "required": False,
                                "description": "The client the action is about (the agent's "
                                               "agency only)",
                                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}],
                "requestBody": _body(action.params_schema or OBJECT),
                "responses": {"200": _json({"$ref": "#/components/schemas/ActionOutcome"},
                                           "The plugin's answer (ok or not)"),
                              **_errors(401, 403, 404, 422, 429, 503)}}}
    return paths


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
    "Flag": {"type": "object", "required": ["key", "enabled", "rollout_percent"],
             "properties": {"key": {"type": "string"}, "enabled": {"type": "boolean"},
                            "rollout_percent": {"type": "integer"}, "targeting": OBJECT,
                            "version": {"type": "integer"}}},
    "Version": {"type": "object", "required": ["plugin_id", "version", "gate_status"],
                "properties": {"plugin_id": {"type": "string"}, "version": {"type": "string"},
                               "gate_status": {"type": "string"},
                               "quarantined": {"type": "boolean"}}},
    "Install": {"type": "object", "required": ["plugin_id", "version", "versions"],
                "properties": {"plugin_id": {"type": "string"}, "version": {"type": "string"},
                               "canary_version": {"type": ["string", "null"]},
                               "canary_percent": {"type": "integer"},
                               "canary": {"type": ["object", "null"]},
                               "versions": {"type": "array",
                                            "items": {"$ref": "#/components/schemas/Version"}}}},
    "ActionOutcome": {"type": "object", "required": ["ok", "stats"], "properties": {
        "ok": {"type": "boolean"}, "result": {}, "ui": {"type": "array"},
        "error": {"type": "object"}, "stats": {"type": "object"}}},
}


def document(manifests: list[Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the installed plugins' `manifests`."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "CMS JSON API", "version": "1",
                 "description": "Plugin actions for agents (login session and CSRF token), the "
                                "admin flag and plugin APIs (admin bearer token or session), "
                                "health and metrics. Errors are {\"error\": {\"code\", "
                                "\"message\"}}; ids are 1 to 2**63-1."},
        "paths": {**_platform_paths(), **_admin_paths(), **_action_paths(manifests)},
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "An admin API token (flask token create USER)"},
            "session": {"type": "apiKey", "in": "cookie", "name": "cms_session",
                        "description": "A login session; unsafe methods also need the "
                                       "X-CSRFToken header"}}},
    }


def installed_manifests(session: Session) -> list[Any]:
    """The manifests of the installed plugins' current versions (one statement)."""
    from cms.models import PluginInstall, PluginVersion
    from cms.plugins.lifecycle import manifest_of

    rows = session.scalars(select(PluginVersion).join(
        PluginInstall, (PluginInstall.plugin_id == PluginVersion.plugin_id)
        & (PluginInstall.version == PluginVersion.version)).order_by(PluginVersion.plugin_id))
    return [manifest_of(row) for row in rows]


@bp.get("/api/openapi.json")
@csrf.exempt
def openapi() -> Response:
    """For logged-in users and admin tokens (it names every installed plugin and action)."""
    from flask_login import current_user

    from cms.auth.tokens import authenticate_token, unauthorized

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    allowed = (current_user.is_authenticated if not header else
               scheme.lower() == "bearer" and authenticate_token(db.session, token.strip()))
    if not allowed:
        return unauthorized("Log in, or send Authorization: Bearer TOKEN (an admin API token).")
    response = jsonify(document(installed_manifests(db.session)))
    response.headers["Cache-Control"] = "no-store"
    return response
