"""Plugin pages and actions: thin views over `cms.plugins.service`.

- POST /plugins/<id>/actions/<action>: an HTML form; with `X-Partial: 1` (the page's script) the
  answer is the panel's new HTML, otherwise a page with the result.
- POST /api/plugins/<id>/actions/<action>: JSON params in, the plugin's JSON out. Errors answer
  {"error": {"kind", "message"}}: 404 off or unknown, 403 capability not granted, 422 bad params,
  503 plugin fault.
- GET /plugins/<id>: the plugin's full page (slot "page").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import (Blueprint, abort, flash, g, jsonify, redirect, render_template, request,
                   url_for)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from cms.app_state import current_actor, state
from cms.errors import DomainError, ValidationFailed, wants_json
from cms.extensions import db
from cms.flags import AgentRef
from cms.ids import parse_id
from cms.jsonbody import json_body
from cms.plugins.service import (AgentCall, PanelView, PluginStatus, PluginUnavailable,
                                 panels, plugin_statuses, render_panel, resolve,
                                 run_action)
from cms.plugins.state import PluginState, plugin_state_of

bp = Blueprint("plugins", __name__)

#: Form fields the host adds to every plugin form; never passed to the plugin.
HOST_FIELDS = ("csrf_token", "__client_id", "__slot", "__action")


def agent_call(client_id: int | None = None, slot: str | None = None,
               budget_ms: int | None = None, page_client_id: int | None = None) -> AgentCall:
    """The request's agent, with the worker's flag and plugin snapshot (one per request, so
    the panels and the status strip of a page agree)."""
    app_state = state()
    agent = AgentRef.for_user(current_user)
    if "plugin_snapshot" not in g:
        snapshot = app_state.flags.snapshot()
        g.plugin_snapshot = plugin_state_of(snapshot.extras) if snapshot is not None else None
    return AgentCall.for_user(current_user, current_actor(), client_id=client_id, slot=slot,
                              mail_undo_s=(app_state.settings.mail_undo_s
                                           if app_state.settings.smtp_url else None),
                              mail_queued=app_state.courier.wake if app_state.courier else None,
                              flag=lambda key: app_state.flags.is_enabled(key, agent),
                              plugins=g.plugin_snapshot or PluginState(),
                              notify=app_state.flags.changed, budget_ms=budget_ms,
                              page_client_id=page_client_id)


def back_link(referrer: str | None, host_url: str, fallback: str) -> str:
    """Where "Back" goes: the referring page when it is a path of this site (same scheme and
    host), else `fallback` (the page the action belongs to). Never another site."""
    if referrer:
        ref, own = urlsplit(referrer), urlsplit(host_url)
        if (ref.scheme, ref.netloc) == (own.scheme, own.netloc) and ref.path.startswith("/") \
                and not ref.path.startswith("//"):
            return urlunsplit(("", "", ref.path, ref.query, ""))
    return fallback


def _client_id(value: Any) -> int | None:
    return parse_id(value, "client_id")


@bp.app_context_processor
def _slots() -> dict[str, Any]:
    def plugin_panels(slot: str, client_id: int | None = None) -> list[PanelView]:
        if not current_user.is_authenticated or current_user.agency_id is None:
            return []
        page_client = (request.view_args or {}).get("client_id")  # the client the page shows
        call = agent_call(client_id, budget_ms=state().settings.panel_budget_ms,
                          page_client_id=page_client if isinstance(page_client, int) else None)
        return panels(db.session, state().plugins, call, slot)

    def plugin_status() -> list[PluginStatus]:
        if not current_user.is_authenticated:
            return []
        return plugin_statuses(db.session, state().plugins, agent_call())
    settings = state().settings
    return {"plugin_panels": plugin_panels, "plugin_status": plugin_status,
            "mail_undo_s": settings.mail_undo_s, "mail_relay": settings.smtp_url is not None}


def _form_params(schema: dict[str, Any]) -> dict[str, Any]:
    """Form fields as the action's params: numbers and booleans converted by its schema."""
    properties = schema.get("properties", {})
    params: dict[str, Any] = {}
    for name in request.form:
        if name in HOST_FIELDS:
            continue
        raw = request.form.get(name, "")
        kind = properties.get(name, {}).get("type")
        if kind in ("integer", "number"):
            if raw.strip() == "":
                continue
            try:
                params[name] = int(raw) if kind == "integer" else float(raw)
            except ValueError:
                raise ValidationFailed(f"{name} must be a number.") from None
        elif kind == "boolean":
            params[name] = raw.lower() in ("1", "true", "on", "yes")
        elif raw == "" and name not in schema.get("required", []):
            continue
        else:
            params[name] = raw
    for name, prop in properties.items():  # an unchecked checkbox sends nothing
        if prop.get("type") == "boolean" and name not in params and name in request.form.getlist("__checkboxes"):
            params[name] = False
    return params


@bp.post("/plugins/<plugin_id>/actions/<action>")
@login_required
def form_action(plugin_id: str, action: str) -> Any:
    built, _ = resolve(db.session, state().plugins, plugin_id, agent_call())
    action = request.form.get("__action") or action
    spec = built.manifest.actions.get(action)
    if spec is None:
        raise PluginUnavailable(f"{built.manifest.name} has no action {action[:40]!r}.")
    client_id = _client_id(request.form.get("__client_id"))
    slot = request.form.get("__slot") or None
    title = next((p.title for p in built.manifest.panels if p.slot == slot), built.manifest.name)
    try:
        outcome = run_action(db.session, state().plugins, agent_call(client_id), plugin_id, action,
                             _form_params(spec.params_schema))
        panel = PanelView(plugin_id, built.manifest.name, title, action, outcome, None,
                          built.manifest.fallback)
        status = 200 if outcome.ok else 422
    except DomainError as exc:
        panel = PanelView(plugin_id, built.manifest.name, title, action, None, exc,
                          built.manifest.fallback)
        status = exc.status
    if request.headers.get("X-Partial") == "1":
        return render_template("plugins/_panel_body.html", panel=panel, slot=slot,
                               client_id=client_id), status
    return render_template("plugins/result.html", panel=panel, slot=slot, client_id=client_id,
                           back=back_link(request.referrer, request.host_url,
                                          url_for("clients.view_client", client_id=client_id)
                                          if client_id else url_for("clients.dashboard"))), status


@bp.post("/api/plugins/<plugin_id>/actions/<action>")
@login_required
def api_action(plugin_id: str, action: str) -> Response:
    params = json_body("the action's params as a JSON object")
    outcome = run_action(db.session, state().plugins,
                         agent_call(_client_id(request.args.get("client_id"))), plugin_id, action,
                         params)
    return jsonify({**outcome.output, "stats": outcome.stats.as_dict()})


@bp.get("/plugins/<plugin_id>")
@login_required
def page(plugin_id: str) -> str:
    built, _ = resolve(db.session, state().plugins, plugin_id, agent_call())
    spec = next((p for p in built.manifest.panels if p.slot == "page"), None)
    if spec is None:
        abort(404)
    client_id = _client_id(request.args.get("client"))
    panel = render_panel(db.session, state().plugins, agent_call(client_id), built, spec)
    return render_template("plugins/page.html", panel=panel, manifest=built.manifest,
                           client_id=client_id)


@bp.get("/plugins/<plugin_id>/panels/<slot>")
@login_required
def panel(plugin_id: str, slot: str) -> Any:
    """One plugin's panel of `slot`, alone (its body's HTML with `X-Partial: 1`): what the page
    fetches for a panel that needed more than the page's budget. No budget here."""
    built, install = resolve(db.session, state().plugins, plugin_id, agent_call())
    spec = next((p for p in built.manifest.panels if p.slot == slot), None)
    if spec is None:
        raise PluginUnavailable(f"{built.manifest.name} has no panel in {slot[:40]!r}.")
    client_id = _client_id(request.args.get("client_id"))
    view = render_panel(db.session, state().plugins, agent_call(client_id), built, spec, install)
    status = view.error.status if view.error is not None else 200
    if request.headers.get("X-Partial") == "1":
        return render_template("plugins/_panel_body.html", panel=view, slot=slot,
                               client_id=client_id), status
    return render_template("plugins/result.html", panel=view, slot=slot, client_id=client_id,
                           back=back_link(request.referrer, request.host_url,
                                          url_for("clients.view_client", client_id=client_id)
                                          if client_id else url_for("clients.dashboard"))), status


@bp.get("/outbox")
@login_required
def outbox() -> str:
    """Mail sent by plugins: the agent's agency's, or every agency's for admins."""
    from cms.plugins.mail import outbox as newest

    everyone = current_user.is_admin and request.args.get("all") == "1"
    mails = newest(db.session, None if everyone else current_user.agency_id)
    return render_template("plugins/outbox.html", mails=mails, everyone=everyone,
                           relay=state().settings.smtp_url is not None)


@bp.post("/outbox/<id:mail_id>/undo")
@login_required
def undo_mail(mail_id: int) -> Any:
    """Undo a mail the agent just sent from a plugin, before the courier takes it: 404 for
    anyone else's, 409 once it has left. JSON, a partial (the panel's undo bar) or a redirect."""
    from cms.plugins.mail import undo

    mail = undo(db.session, mail_id, user_id=current_user.id, agency_id=current_user.agency_id)
    message = f"Undone: the mail to {mail.to_addr} was not sent."
    if wants_json():
        return jsonify({"id": mail.id, "status": mail.status, "message": message})
    if request.headers.get("X-Partial") == "1":
        return render_template("plugins/_undo_done.html", message=message)
    flash(message, "success")
    return redirect(back_link(request.referrer, request.host_url, url_for("plugins.outbox")),
                    code=303)
