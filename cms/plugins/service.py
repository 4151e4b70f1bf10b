"""Running plugin actions for an agent: the one path every panel, form and API call takes.

`run_action` checks that the plugin is on and the params fit the action's schema, builds the
call context from the host's own knowledge (agent, agency, open client, time), runs the call in
the sandbox, and commits the call's writes only when the plugin answered ok. Every fault maps to
one typed error; none becomes a 500. `panels` renders a slot, with the fallback text in place of
a plugin that fails.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from cms import monitoring
from cms.audit import Actor
from cms.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from cms.ids import parse_id
from cms.models import Booking, Client, PluginInstall, PluginVersion, User, utcnow
from cms.flags import bump_config_version, config_version, ensure_plugin_flag
from cms.plugins.hostops import HostContext
from cms.plugins.lifecycle import get_version, quarantine, register_bundled
from cms.plugins.registry import BuiltPlugin, PluginRegistry
from cms.plugins.state import InstallState, PluginState, load_plugin_state
from cms.runtime import CallStats, PluginFault, attributed
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


class PanelDeferred(DomainError):
    """A panel inside a page ran past its budget; the browser fetches it afterwards. Not a
    fault: nothing is counted against the plugin, and nothing it wrote was kept."""

    status = 503
    code = "panel_deferred"

    def __init__(self, plugin_id: str, budget_ms: int) -> None:
        super().__init__(f"{plugin_id} needed more than the page's {budget_ms} ms for its panel.")


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
    #: Outbox mails the call queued (committed): the page offers to undo them.
    queued_mail: tuple[int, ...] = ()

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
    #: Past the page's panel budget: rendered as a placeholder the browser fills in.
    deferred: bool = False
    #: The manifest asks for a wide panel (the client page's dock).
    wide: bool = False

    @property
    def failed(self) -> bool:
        return self.outcome is None and not self.deferred


@dataclass(frozen=True)
class AgentCall:
    """Who runs an action, where: plain values the views fill in from the request."""

    actor: Actor
    agent_name: str
    client_id: int | None = None
    slot: str | None = None
    #: How long the call's mail waits for its sender's undo, and who delivers it after.
    #: None: no relay, the mail is kept in the outbox (no courier takes it).
    mail_undo_s: int | None = 0
    mail_queued: Callable[[], None] | None = None
    #: Evaluates a feature flag for this agent (the app's in-memory snapshot); None: all on.
    flag: Callable[[str], bool] | None = None
    #: This worker's plugin snapshot; None: read the database (CLI, tests).
    plugins: PluginState | None = None
    #: Announces a new config version (a quarantine this call caused) to every worker.
    notify: Callable[[int], None] | None = None
    #: A panel's own time budget inside a page, in ms; None: the action's whole deadline.
    budget_ms: int | None = None
    #: The client the page shows, when the call has none of its own (the toolbar): its plugin
    #: storage is read with the agent's in one statement. Never given to the plugin.
    page_client_id: int | None = None

    def flag_on(self, key: str) -> bool:
        return True if self.flag is None else self.flag(key)

    def plugin_on(self, plugin_id: str) -> bool:
        """The kill switches: every plugin (`plugins.all`) and this one (`plugin.<id>`)."""
        return self.flag_on(ALL_PLUGINS_FLAG) and self.flag_on(f"plugin.{plugin_id}")

    @classmethod
    def for_user(cls, user: User, actor: Actor, **kwargs: Any) -> "AgentCall":
        return cls(actor, user.display_name, **kwargs)


def plugin_state(session: Session, call: AgentCall) -> PluginState:
    """The plugin snapshot the call carries, or (CLI, tests) the database's state now."""
    return call.plugins if call.plugins is not None else load_plugin_state(session.connection())


def _served(session: Session, registry: PluginRegistry, states: PluginState,
            install: InstallState, user_id: int) -> BuiltPlugin | None:
    """The built version this agent gets (its module read once per process), or None."""
    version = states.serving(install, user_id)
    if version is None:
        return None
    return registry.for_state(version, lambda: get_version(session, version.plugin_id,
                                                          version.version))


def resolve(session: Session, registry: PluginRegistry, plugin_id: str,
            call: AgentCall) -> tuple[BuiltPlugin, InstallState]:
    """The version of `plugin_id` this agent gets, and the install, from the call's snapshot;
    raises PluginUnavailable when the plugin is unknown, off (its install or its kill switch),
    or every usable version is quarantined."""
    assert call.actor.user_id is not None
    states = plugin_state(session, call)
    install = states.installs.get(plugin_id)
    if install is None or not install.enabled or not call.plugin_on(plugin_id):
        raise PluginUnavailable(f"There is no plugin {plugin_id[:40]!r}, or it is turned off.")
    built = _served(session, registry, states, install, call.actor.user_id)
    if built is None:
        raise PluginUnavailable(f"{plugin_id} is quarantined and has no good version to fall "
                                "back to.")
    return built, install


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


def _open_client(session: Session, call: AgentCall) -> Client | None:
    """The call's client, checked against the agent's agency; the page's own loaded client is
    reused (identity map), so panels of a client page cost no query for it."""
    if not call.client_id:
        return None
    client = session.get(Client, call.client_id)
    if client is None or client.agency_id != call.actor.agency_id:
        raise NotFound("This client does not exist.")
    return client


def _check_param_ids(session: Session, agency_id: int, params: dict[str, Any],
                     client: Client | None) -> None:
    """Every record id among an action's params (client_id, booking_id) must name a record of
    the agent's agency before the plugin sees it: a foreign or unknown one is NotFound (never
    saying which), a malformed one 422. The call's own client costs no query."""
    for key, model, label in (("client_id", Client, "client"), ("booking_id", Booking, "booking")):
        value = params.get(key)
        if value is None or value == "" or value == 0:
            continue
        record_id = parse_id(value, key)
        if key == "client_id" and client is not None and client.id == record_id:
            continue
        found = session.scalar(select(model.id).where(model.id == record_id,
                                                      model.agency_id == agency_id))
        if found is None:
            raise NotFound(f"This {label} does not exist.")


def run_action(session: Session, registry: PluginRegistry, call: AgentCall, plugin_id: str,
               action: str, params: Any, now: datetime | None = None) -> ActionOutcome:
    """Run `action` of `plugin_id` for the agent in `call` and return its checked outcome.

    Raises PluginUnavailable (404), PluginParamsInvalid (422), NotFound (the client is not in
    the agent's agency), PluginDenied (403), PluginFaulted (503), or PanelDeferred when a
    panel budget (`call.budget_ms`) ran out. A call that only reads makes no transaction work;
    the first write op opens a savepoint, and writes are committed only when the plugin
    answers ok (without expiring the page's loaded objects); otherwise nothing is kept.
    """
    built, install = resolve(session, registry, plugin_id, call)
    return _run(session, registry, call, built, install, action, params, now)


def _commit_keeping_objects(session: Session) -> None:
    """Commit the call's flushed writes; objects the page loaded stay loaded (their state is
    what this transaction saw, which the commit does not change)."""
    real = session() if isinstance(session, scoped_session) else session
    expire, real.expire_on_commit = real.expire_on_commit, False
    try:
        real.commit()
    finally:
        real.expire_on_commit = expire


def check_action(built: BuiltPlugin, action: str, params: Any) -> None:
    """The server's checks of an action call before the plugin runs: a declared action, params
    that follow its schema. Raises PluginUnavailable or PluginParamsInvalid (both 4xx)."""
    manifest = built.manifest
    if action not in manifest.actions:
        raise PluginUnavailable(f"{manifest.name} has no action {action[:40]!r}.")
    if not isinstance(params, dict):
        raise PluginParamsInvalid("Params must be a JSON object.")
    problem = next(iter(built.validator(action).iter_errors(params)), None)
    if problem is not None:
        where = ".".join(str(p) for p in problem.path)
        raise PluginParamsInvalid(f"Params of {action}: {where + ': ' if where else ''}{problem.message}")


def _run(session: Session, registry: PluginRegistry, call: AgentCall, built: BuiltPlugin,
         install: InstallState, action: str, params: Any, now: datetime | None) -> ActionOutcome:
    manifest = built.manifest
    check_action(built, action, params)
    assert call.actor.agency_id is not None
    client = _open_client(session, call)
    _check_param_ids(session, call.actor.agency_id, params, client)
    host = HostContext(session=session, plugin_id=manifest.id, agency_id=call.actor.agency_id,
                       actor=call.actor, client_id=client.id if client else None,
                       http_allow=manifest.http_allow, mail_undo_s=call.mail_undo_s,
                       page_client_id=call.page_client_id if client is None else None)
    try:
        data = abi.encode_input(action, params, _context(call, client, now or utcnow()))
    except EnvelopeError as exc:
        raise PluginParamsInvalid(str(exc)) from None
    grants = install.granted & manifest.capabilities
    limits = None
    try:
        plugin = registry.plugin(built, grants)
        limits = plugin.limits
        result = plugin.call_raw(data, {"host": host}, timeout_ms=call.budget_ms)
        if result.ok:
            check_blocks(result.output.get("ui", []), manifest.actions)
    except PluginFault as fault:
        host.end(keep=False)
        if (fault.kind == FaultKind.TIMEOUT and call.budget_ms is not None and limits is not None
                and call.budget_ms < limits.timeout_ms):
            raise PanelDeferred(manifest.id, call.budget_ms) from None
        monitoring.plugin_call(manifest.id, manifest.version, fault.kind, fault.stats, limits,
                               action)
        return _failed(session, registry, call, built, fault.kind, fault.message)
    except UIError as exc:
        host.end(keep=False)
        kind, message = attributed(FaultKind.INVALID_OUTPUT, f"invalid UI blocks: {exc}",
                                   result.stats)
        monitoring.plugin_call(manifest.id, manifest.version, kind, result.stats, limits, action)
        return _failed(session, registry, call, built, kind, message)
    except BaseException:
        host.end(keep=False)
        raise
    if host.end(keep=result.ok) and result.ok:
        _commit_keeping_objects(session)
        if host.queued_mail and call.mail_queued is not None:
            call.mail_queued()
    monitoring.plugin_call(manifest.id, manifest.version,
                           "ok" if result.ok else "error", result.stats, limits, action)
    registry.note(manifest.id, None)
    return ActionOutcome(manifest.id, action, result.output, result.stats,
                         tuple(host.queued_mail) if result.ok else ())


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
            quarantine(session, Actor.system("circuit-breaker"), plugin_id, version, reason,
                       notify=call.notify)
        except Exception:  # the call's answer must not depend on recording the quarantine
            session.rollback()
            logger.exception("could not quarantine %s %s", plugin_id, version)
    if kind == FaultKind.CAPABILITY_DENIED:
        raise PluginDenied(message, built.manifest.fallback)
    raise PluginFaulted(str(kind), message, built.manifest.fallback)


def panels(session: Session, registry: PluginRegistry, call: AgentCall, slot: str) -> list[PanelView]:
    """Every enabled plugin's panel for `slot`, rendered, in one pass over the call's snapshot;
    a failing one carries its error and falls back to its manifest's text, one past its budget
    is deferred (the browser fetches it), and the others render as usual."""
    assert call.actor.user_id is not None
    states = plugin_state(session, call)
    views: list[PanelView] = []
    for install in states.enabled():
        if not call.plugin_on(install.plugin_id):
            continue
        built = _served(session, registry, states, install, call.actor.user_id)
        if built is None:
            continue
        for panel in built.manifest.panels:
            if panel.slot == slot:
                views.append(render_panel(session, registry, call, built, panel, install))
    return views


def render_panel(session: Session, registry: PluginRegistry, call: AgentCall, built: BuiltPlugin,
                 panel: Panel, install: InstallState | None = None) -> PanelView:
    """Run the panel's action; a failure is kept in the view (with the fallback), not raised,
    and a panel past `call.budget_ms` comes back deferred."""
    outcome: ActionOutcome | None = None
    error: DomainError | None = None
    panel_call = replace(call, slot=panel.slot)
    try:
        if install is None:
            outcome = run_action(session, registry, panel_call, built.manifest.id, panel.action, {})
        else:
            outcome = _run(session, registry, panel_call, built, install, panel.action, {}, None)
    except PanelDeferred:
        return PanelView(built.manifest.id, built.manifest.name, panel.title, panel.action, None,
                         None, built.manifest.fallback, deferred=True,
                         wide=panel.width == "wide")
    except DomainError as exc:
        error = exc
    return PanelView(built.manifest.id, built.manifest.name, panel.title, panel.action, outcome,
                     error, built.manifest.fallback, wide=panel.width == "wide")


@dataclass(frozen=True)
class PluginStatus:
    """What the agent's status strip shows for one plugin: working, failing or not used yet."""

    plugin_id: str
    name: str
    state: str  # "ok", "failing" or "idle"
    detail: str


RECENT_S = 600.0


def plugin_statuses(session: Session, registry: PluginRegistry, call: AgentCall) -> list[PluginStatus]:
    """Every plugin that is on for this agent, from the call's snapshot, with its last outcome
    in this process (faults in the last 10 min); a plugin with no usable version (quarantined)
    shows as failing."""
    assert call.actor.user_id is not None
    states = plugin_state(session, call)
    statuses = []
    for install in states.enabled():
        if not call.plugin_on(install.plugin_id):
            continue
        built = _served(session, registry, states, install, call.actor.user_id)
        if built is None:
            statuses.append(PluginStatus(install.plugin_id, install.plugin_id, "failing",
                                         "quarantined"))
            continue
        name = built.manifest.name
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
    bump_config_version(session)  # versions and installs may change: every snapshot reloads
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
