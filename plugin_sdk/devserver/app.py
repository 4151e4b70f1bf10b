"""The preview's Flask app: the plugin's panels rendered with the CMS's own templates, static
files and security headers, forms posting to its actions as on the server, and a dev panel of
each call's statistics and host calls under it.

Routes: `/` the preview page; `/plugins/<id>/actions/<action>` and `/plugins/<id>/panels/<slot>`
(the endpoints the CMS templates link to); `/__dev/version` the build the page polls.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, jsonify, render_template, request
from jinja2 import ChoiceLoader, FileSystemLoader
from werkzeug.wrappers import Response

import cms
from cms.errors import DomainError
from cms.plugins.views import _form_params
from cms.security import SECURITY_HEADERS
from plugin_sdk.devserver.session import Call, DevSession
from plugin_sdk.manifest import SLOTS
from plugin_sdk.ui import clock_text, timer_seconds

CMS_ROOT = Path(cms.__file__).parent
HERE = Path(__file__).parent
#: The preview's order of slots: as an agent meets them.
SLOT_ORDER = ("agent.toolbar", "client.sidebar", "dashboard.widget", "page")


def create_app(session: DevSession) -> Flask:
    """The preview app over `session` (which the caller owns and closes)."""
    app = Flask(__name__, static_folder=str(CMS_ROOT / "static"), static_url_path="/static",
                template_folder=str(HERE / "templates"))
    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(HERE / "templates")),
                                     FileSystemLoader(str(CMS_ROOT / "templates"))])
    app.extensions["cms_dev_session"] = session
    token = app.config["DEV_FORM_TOKEN"] = secrets.token_urlsafe(16)
    app.jinja_env.globals.update(
        csrf_token=lambda: token,
        has_endpoint=lambda name: name in app.view_functions)
    # The filters the CMS registers for the block templates (cms.app).
    app.add_template_filter(timer_seconds, "timer_seconds")
    app.add_template_filter(clock_text, "clock_text")
    app.register_blueprint(_plugins_bp())
    app.register_blueprint(_dev_bp())

    @app.before_request
    def _check_token() -> None:
        # Any web page the author has open could post to 127.0.0.1: forms carry the token.
        if request.method == "POST" and request.form.get("csrf_token") != token:
            abort(400, "The form is from another page; reload the preview.")

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response
    return app


def _session() -> DevSession:
    from flask import current_app

    session: DevSession = current_app.extensions["cms_dev_session"]
    return session


def _client_arg(value: Any) -> int | None:
    from cms.ids import parse_id

    return parse_id(value, "client_id")


def _slot_client(session: DevSession, slot: str) -> int | None:
    """The client a slot's panel is called with: the open client beside its record only."""
    return session.world.client_id if slot == "client.sidebar" else None


def _partial(call: Call, slot: str | None, client_id: int | None, status: int) -> Any:
    """A panel body as the CMS answers it (app.js swaps it in), with the call's dev panel."""
    return render_template("devserver/_partial.html", call=call, panel=call.view, slot=slot,
                           client_id=client_id), status


def _status(call: Call) -> int:
    if call.view.error is not None:
        return call.view.error.status
    return 200 if call.view.outcome is not None and call.view.outcome.ok else 422


def _plugins_bp() -> Blueprint:
    bp = Blueprint("plugins", __name__)

    @bp.post("/plugins/<plugin_id>/actions/<action>")
    def form_action(plugin_id: str, action: str) -> Any:
        session = _session()
        manifest = session.manifest
        if manifest is None or manifest.id != plugin_id:
            abort(404)
        action = request.form.get("__action") or action
        client_id = _client_arg(request.form.get("__client_id"))
        slot = request.form.get("__slot") or None
        spec = manifest.actions.get(action)
        try:
            params = _form_params(spec.params_schema if spec is not None else {})
        except DomainError as exc:
            abort(exc.status, exc.message)
        call = session.call(action, params, slot, client_id)
        if request.headers.get("X-Partial") == "1":
            return _partial(call, slot, client_id, _status(call))
        return render_template("devserver/result.html", call=call, panel=call.view, slot=slot,
                               client_id=client_id, build=session.build), _status(call)

    @bp.get("/plugins/<plugin_id>/panels/<slot>")
    def panel(plugin_id: str, slot: str) -> Any:
        session = _session()
        spec = next((p for p in session.panels(slot)), None)
        if spec is None or session.manifest is None or session.manifest.id != plugin_id:
            abort(404)
        client_id = _client_arg(request.args.get("client_id"))
        call = session.call(spec.action, {}, slot, client_id, spec.title)
        return _partial(call, slot, client_id, _status(call))
    return bp


def _dev_bp() -> Blueprint:
    bp = Blueprint("devserver", __name__, static_folder=str(HERE / "static"),
                   static_url_path="/__dev/static")

    @bp.get("/")
    def preview() -> str:
        session = _session()
        slots = []
        for slot in SLOT_ORDER:
            client_id = _slot_client(session, slot)
            calls = ([session.call(p.action, {}, slot, client_id, p.title)
                      for p in session.panels(slot)] if session.build.built is not None else [])
            slots.append({"name": slot, "what": SLOTS[slot], "client_id": client_id,
                          "calls": calls})
        client = session.world.clients.get(session.world.client_id or 0)
        bookings = [b for b in session.world.state["bookings"].values()
                    if client is not None and b["client_id"] == client["id"]]
        return render_template("devserver/preview.html", session=session, build=session.build,
                               manifest=session.manifest, slots=slots, client=client,
                               bookings=bookings, host_state=session.host_state())

    @bp.get("/__dev/version")
    def version() -> Response:
        build = _session().build
        return jsonify({"version": build.version, "ok": build.error is None})
    return bp
