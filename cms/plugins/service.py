"""Running plugin actions for an agent: the one path every panel, form and API call takes.

`run_action` checks that the plugin is on and the params fit the action's schema, builds the
call context from the host's own knowledge (agent, agency, open client, time), runs the call in
the sandbox, and commits the call's writes only when the plugin answered ok. Every fault maps to
one typed error; none becomes a 500. `panels` renders a slot, with the fallback text in place of
a plugin that fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable

import jsonschema
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms import monitoring
from cms.audit import Actor
from cms.clients.service import get_client
from cms.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from cms.models import Client, PluginInstall, PluginVersion, User, utcnow
from cms.plugins import mail
from cms.flags import config_version, ensure_plugin_flag
from cms.plugins.hostops import HostContext
from cms.plugins.lifecycle import quarantine, register_bundled, serving_version
from cms.plugins.registry import BuiltPlugin, PluginRegistry
from cms.runtime import CallStats, PluginFault
from plugin_sdk import abi
from plugin_sdk.abi import EnvelopeError, FaultKind
from plugin_sdk.manifest import Panel
from plugin_sdk.ui import UIError, check_blocks

logger = logging.getLogger(__name__)

ALL_PLUGINS_FLAG = "plugins.all"
AUTO_QUARANTINE_FLAG = "plugins.auto_quarantine"


class PluginUnavailable(NotFound):
    """The plugin does not exist here or is off."""

    code = "plugin_unavailable"


class PluginParamsInvalid(ValidationFailed):
    code = "invalid_params"


class PluginFaulted(DomainError):
    """The plugin failed; `kind` is its FaultKind. Nothing it wrote was kept."""

    status = 503
    code = "plugin_fault"
    title = "Plugin unavailable"

    def __init__(self, kind: str, message: str, fallback: str) -> None:
        super().__init__(message, kind=kind, fallback=fallback)
        self.kind = kind
        self.fallback = fallback


class PluginDenied(PermissionDenied):
    """The plugin asked for a capability it was not granted."""

    code = "capability_denied"

    def __init__(self, message: str, fallback: str) -> None:
        super().__init__(message, kind=FaultKind.CAPABILITY_DENIED.value, fallback=fallback)
        self.kind = FaultKind.CAPABILITY_DENIED.value
        self.fallback = fallback


@dataclass(frozen=True)
class ActionOutcome:
    """An action that ran: its checked output envelope and statistics."""

    plugin_id: str
    action: str
    output: dict[str, Any]
    stats: CallStats

    @property
    def ok(self) -> bool:
        return self.output.get("ok") is True

    @property
    def ui(self) -> list[dict[str, Any]]:
        return list(self.output.get("ui", [])) if self.ok else []


@dataclass(frozen=True)
class PanelView:
    """One plugin's panel in a slot: its blocks, or why it shows the fallback text."""

    plugin_id: str
    name: str
    title: str
    action: str
    outcome: ActionOutcome | None
    error: DomainError | None
    fallback: str

    @property
    def failed(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True)
class AgentCall:
    """Who runs an action, where: plain values the views fill in from the request."""

    actor: Actor
    agent_name: str
    client_id: int | None = None
    slot: str | None = None
    smtp_url: str | None = None
    mail_from: str = "noreply@cms.local"
    #: Evaluates a feature flag for this agent (the app's in-memory snapshot); None: all on.
    flag: Callable[[str], bool] | None = None

    def flag_on(self, key: str) -> bool:
        return True if self.flag is None else self.flag(key)

    def plugin_on(self, plugin_id: str) -> bool:
        """The kill switches: every plugin (`plugins.all`) and this one (`plugin.<id>`)."""
        return self.flag_on(ALL_PLUGINS_FLAG) and self.flag_on(f"plugin.{plugin_id}")

    @classmethod
    def for_user(cls, user: User, actor: Actor, **kwargs: Any) -> "AgentCall":
        return cls(actor, user.display_name, **kwargs)


def resolve(session: Session, registry: PluginRegistry, plugin_id: str,
            call: AgentCall) -> tuple[BuiltPlugin, PluginInstall]:
    """The version of `plugin_id` this agent gets, and the install; raises PluginUnavailable
    when the plugin is unknown, off (its install or its kill switch), or every usable version
    is quarantined."""
    assert call.actor.user_id is not None
    user_id = call.actor.user_id
    install = session.get(PluginInstall, plugin_id)
    if install is None or not install.enabled or not call.plugin_on(plugin_id):
        raise PluginUnavailable(f"There is no plugin {plugin_id[:40]!r}, or it is turned off.")
    row = serving_version(session, install, user_id)
    if row is None:
        raise PluginUnavailable(f"{plugin_id} is quarantined and has no good version to fall "
                                "back to.")
    return registry.for_version(row), install


def _context(call: AgentCall, client: Client | None, now: datetime) -> dict[str, Any]:
    context: dict[str, Any] = {
        "agent": {"id": call.actor.user_id, "username": call.actor.username,
                  "name": call.agent_name, "agency_id": call.actor.agency_id},
        "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if client is not None:
        context["client"] = {"id": client.id, "name": client.full_name, "phone": client.phone,
                             "email": client.email}
    if call.slot:
        context["slot"] = call.slot
    return context


def run_action(session: Session, registry: PluginRegistry, call: AgentCall, plugin_id: str,
               action: str, params: Any, now: datetime | None = None) -> ActionOutcome:
    """Run `action` of `plugin_id` for the agent in `call` and return its checked outcome.

    Raises PluginUnavailable (404), PluginParamsInvalid (422), NotFound (the client is not in
    the agent's agency), PluginDenied (403) or PluginFaulted (503). Writes of the call are
    committed only when the plugin answers ok; otherwise nothing it did is kept.
    """
    built, install = resolve(session, registry, plugin_id, call)
    manifest = built.manifest
    spec = manifest.actions.get(action)
    if spec is None:
        raise PluginUnavailable(f"{manifest.name} has no action {action[:40]!r}.")
    if not isinstance(params, dict):
        raise PluginParamsInvalid("Params must be a JSON object.")
    problem = next(iter(jsonschema.Draft202012Validator(spec.params_schema).iter_errors(params)), None)
    if problem is not None:
        where = ".".join(str(p) for p in problem.path)
        raise PluginParamsInvalid(f"Params of {action}: {where + ': ' if where else ''}{problem.message}")
    assert call.actor.agency_id is not None
    client = get_client(session, call.actor.agency_id, call.client_id) if call.client_id else None
    host = HostContext(session=session, plugin_id=plugin_id, agency_id=call.actor.agency_id,
                       actor=call.actor, client_id=client.id if client else None,
                       http_allow=manifest.http_allow)
    try:
        data = abi.encode_input(action, params, _context(call, client, now or utcnow()))
    except EnvelopeError as exc:
        raise PluginParamsInvalid(str(exc)) from None
    grants = frozenset(install.granted) & manifest.capabilities
    savepoint = session.begin_nested()
    limits = None
    try:
        plugin = registry.plugin(built, grants)
        limits = plugin.limits
        result = plugin.call_raw(data, {"host": host})
        if result.ok:
            check_blocks(result.output.get("ui", []), manifest.actions)
    except PluginFault as fault:
        savepoint.rollback()
        monitoring.plugin_call(built.manifest.id, built.manifest.version, fault.kind, fault.stats, limits)
        return _failed(session, registry, call, built, fault.kind, fault.message)
    except UIError as exc:
        savepoint.rollback()
        monitoring.plugin_call(built.manifest.id, built.manifest.version, FaultKind.INVALID_OUTPUT,
                               result.stats, limits)
        return _failed(session, registry, call, built, FaultKind.INVALID_OUTPUT,
                       f"invalid UI blocks: {exc}")
    except Exception:
        savepoint.rollback()
        raise
    if result.ok:
        savepoint.commit()
        session.commit()
        mail.deliver(session, host.queued_mail, call.smtp_url, call.mail_from)
    else:
        savepoint.rollback()
    monitoring.plugin_call(built.manifest.id, built.manifest.version,
                           "ok" if result.ok else "error", result.stats, limits)
    registry.note(plugin_id, None)
    return ActionOutcome(plugin_id, action, result.output, result.stats)


def _failed(session: Session, registry: PluginRegistry, call: AgentCall, built: BuiltPlugin,
            kind: str, message: str) -> Any:
    """Count the fault against the version (quarantining it past the threshold) and raise the
    typed error for it."""
    plugin_id, version = built.manifest.id, built.manifest.version
    registry.note(plugin_id, str(kind))
    logger.warning("plugin %s@%s action failed: %s: %s", plugin_id, version, kind, message)
    count = registry.faults.record(plugin_id, version, str(kind))
    if registry.faults.tripped(count) and call.flag_on(AUTO_QUARANTINE_FLAG):
        reason = (f"{count} faults in {registry.faults.window_s:.0f} s (last: {kind}: "
                  f"{message[:200]})")
        try:
            quarantine(session, Actor.system("circuit-breaker"), plugin_id, version, reason)
        except Exception:  # the call's answer must not depend on recording the quarantine
            session.rollback()
            logger.exception("could not quarantine %s %s", plugin_id, version)
    if kind == FaultKind.CAPABILITY_DENIED:
        raise PluginDenied(message, built.manifest.fallback)
    raise PluginFaulted(str(kind), message, built.manifest.fallback)


def panels(session: Session, registry: PluginRegistry, call: AgentCall, slot: str) -> list[PanelView]:
    """Every enabled plugin's panel for `slot`, rendered; a failing one carries its error and
    falls back to its manifest's text, and the others render as usual."""
    assert call.actor.user_id is not None
    views: list[PanelView] = []
    for install in session.scalars(select(PluginInstall).where(PluginInstall.enabled.is_(True))
                                   .order_by(PluginInstall.plugin_id)).all():
        if not call.plugin_on(install.plugin_id):
            continue
        row = serving_version(session, install, call.actor.user_id)
        if row is None:
            continue
        built = registry.for_version(row)
        for panel in built.manifest.panels:
            if panel.slot == slot:
                views.append(render_panel(session, registry, call, built, panel))
    return views


def render_panel(session: Session, registry: PluginRegistry, call: AgentCall, built: BuiltPlugin,
                 panel: Panel) -> PanelView:
    """Run the panel's action; a failure is kept in the view (with the fallback), not raised."""
    outcome: ActionOutcome | None = None
    error: DomainError | None = None
    try:
        outcome = run_action(session, registry, replace(call, slot=panel.slot), built.manifest.id,
                             panel.action, {})
    except DomainError as exc:
        error = exc
    return PanelView(built.manifest.id, built.manifest.name, panel.title, panel.action, outcome,
                     error, built.manifest.fallback)


@dataclass(frozen=True)
class PluginStatus:
    """What the agent's status strip shows for one plugin: working, failing or not used yet."""

    plugin_id: str
    name: str
    state: str  # "ok", "failing" or "idle"
    detail: str


RECENT_S = 600.0


def plugin_statuses(session: Session, registry: PluginRegistry, call: AgentCall) -> list[PluginStatus]:
    """Every plugin that is on for this agent, with its last outcome in this process (faults in
    the last 10 min); a plugin with no usable version (quarantined) shows as failing."""
    import time

    assert call.actor.user_id is not None
    statuses = []
    for install in session.scalars(select(PluginInstall).where(PluginInstall.enabled.is_(True))
                                   .order_by(PluginInstall.plugin_id)).all():
        if not call.plugin_on(install.plugin_id):
            continue
        row = serving_version(session, install, call.actor.user_id)
        if row is None:
            statuses.append(PluginStatus(install.plugin_id, install.plugin_id, "failing",
                                         "quarantined"))
            continue
        name = registry.for_version(row).manifest.name
        health = registry.health(install.plugin_id)
        if health is None or (not health.ok and time.monotonic() - health.at > RECENT_S):
            statuses.append(PluginStatus(install.plugin_id, name, "idle", "not used yet"))
        elif health.ok:
            statuses.append(PluginStatus(install.plugin_id, name, "ok", "working"))
        else:
            statuses.append(PluginStatus(install.plugin_id, name, "failing",
                                         f"failing ({(health.kind or 'fault').replace('_', ' ')})"))
    return statuses


def sync_installs(session: Session, registry: PluginRegistry,
                  flags: Any | None = None) -> list[str]:
    """Record every bundled plugin (in the plugin folder) as a version, and install it (on, with
    what it requests) unless installed. A new bundled version replaces an older bundled current
    one (a deploy is the intent); an uploaded current version is left alone. Returns ids added."""
    added = []
    for plugin_id, built in sorted(registry.built().items()):
        row = register_bundled(session, built.manifest_text, built.wasm, built.vectors)
        ensure_plugin_flag(session, plugin_id, built.manifest.name)
        install = session.get(PluginInstall, plugin_id)
        if install is None:
            session.add(PluginInstall(plugin_id=plugin_id, version=row.version, enabled=True,
                                      granted=sorted(built.manifest.capabilities)))
            added.append(plugin_id)
            continue
        current = session.scalar(select(PluginVersion).where(
            PluginVersion.plugin_id == plugin_id, PluginVersion.version == install.version))
        if install.version != row.version and (current is None or current.source == "bundled"):
            install.previous_version, install.version = install.version, row.version
            install.granted = sorted(set(install.granted) | built.manifest.capabilities)
    session.commit()
    if flags is not None:  # this worker sees the new plugin flags now; others on their signal
        flags.changed(config_version(session))
    return added
