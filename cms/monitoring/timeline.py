"""What changed: one timeline of the last hour for /admin/health, where the runbook starts.

Plugin releases, canaries, rollbacks and quarantines and flag changes come from the audit log,
alerts from the alerts table, and worker starts from the workers the monitor knows. Each plugin
alert is linked to the change that most plausibly caused it: the latest release or canary of
the same plugin version before the alert. The headline is the newest such chain, for example
"softphone 1.1.0 released 14:02:01 -> memory_leak critical 14:02:07 -> quarantined 14:02:08".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.models import Alert, AuditEvent

#: Audit actions shown, and how they read on the timeline.
CHANGES = {
    "plugin.promote": "released",
    "plugin.canary": "canary",
    "plugin.rollback": "rolled back",
    "plugin.canary.rollback": "canary rolled back",
    "plugin.quarantine": "quarantined",
    "plugin.quarantine.release": "quarantine released",
    "flag.update": "flag changed",
}
#: Changes that put a version in front of agents (a chain starts at one of them).
RELEASES = {"plugin.promote", "plugin.canary"}
#: Changes that take it away again (a chain ends at one of them).
REMEDIES = {"plugin.quarantine", "plugin.rollback", "plugin.canary.rollback"}
MAX_EVENTS = 200
HEADLINE_STEPS = 5


@dataclass
class Event:
    """One line of the timeline. `cause` is the index (in `Timeline.events`) of the change an
    alert is linked to."""

    at: datetime
    kind: str  # "change", "alert" or "worker"
    what: str
    text: str
    plugin_id: str | None = None
    version: str | None = None
    actor: str | None = None
    severity: str | None = None
    cause: int | None = None
    key: str = ""

    @property
    def clock(self) -> str:
        return self.at.strftime("%H:%M:%S")


@dataclass
class Timeline:
    """Events oldest first, and the chains release -> alerts -> remedy, newest first."""

    events: list[Event] = field(default_factory=list)
    chains: list[list[Event]] = field(default_factory=list)

    @property
    def headline(self) -> str | None:
        """The newest chain as one line (at most its first `HEADLINE_STEPS` steps), or None
        when no alert followed a change."""
        if not self.chains:
            return None
        return " -> ".join(_step(e) for e in self.chains[0][:HEADLINE_STEPS])


def _step(event: Event) -> str:
    if event.kind == "alert":
        return f"{event.what} {event.severity} {event.clock}"
    if event.what in ("released", "canary"):
        return f"{event.plugin_id} {event.version} {event.what} {event.clock}"
    return f"{event.what} {event.clock}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _change(row: AuditEvent) -> Event:
    what = CHANGES[row.action]
    after = row.after or {}
    plugin_id = row.target_id if row.target_type == "plugin" else None
    version = None
    if plugin_id is not None and row.target_label and " " in row.target_label:
        version = row.target_label.split(" ", 1)[1]
    if row.action == "flag.update":
        text = f"flag {row.target_label or row.target_id} changed by {row.actor_name}"
    elif row.action == "plugin.canary":
        text = (f"{row.target_label} to {after.get('canary_percent', '?')} % of agents "
                f"by {row.actor_name}" if after.get("canary_percent") else
                f"{plugin_id} canary ended by {row.actor_name}")
    else:
        text = f"{row.target_label} {what} by {row.actor_name}"
    reason = after.get("reason")
    if reason:
        text += f": {reason}"
    if row.action == "plugin.canary.rollback" and after.get("signal"):
        text += f" (signal {after['signal']})"
    if after.get("override"):
        text += f" (gate override: {after['override']})"
    return Event(_aware(row.created_at), "change", what, text, plugin_id, version,
                 row.actor_name, key=row.action)


def build(session: Session, now: datetime, workers: Mapping[str, Mapping[str, Any]] | None = None,
          hours: float = 1.0) -> Timeline:
    """The last `hours` of changes, alerts and worker starts (two statements)."""
    since = now - timedelta(hours=hours)
    rows = session.scalars(select(AuditEvent).where(
        AuditEvent.created_at >= since, AuditEvent.action.in_(sorted(CHANGES)))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(MAX_EVENTS))
    events = [_change(r) for r in rows]
    alerts = session.scalars(select(Alert).where(Alert.first_seen >= since)
                             .order_by(Alert.first_seen.desc()).limit(MAX_EVENTS))
    for a in alerts:
        events.append(Event(_aware(a.first_seen), "alert", a.kind, a.message, a.plugin_id,
                            a.version, severity=a.severity, key=f"alert:{a.id}"))
    for worker_id, info in sorted((workers or {}).items()):
        started = info.get("started")
        if isinstance(started, (int, float)):
            at = datetime.fromtimestamp(started, timezone.utc)
            if at >= since:
                events.append(Event(at, "worker", "worker started",
                                    f"worker {worker_id} started", key=f"worker:{worker_id}"))
    return link(events)


def link(events: Iterable[Event]) -> Timeline:
    """Order `events`, link each plugin alert to its most plausible cause (the latest release
    or canary of the same version before it), and build one chain per release that alerts
    followed: the release, then that version's alerts and remedies (quarantine, rollback) until
    the plugin's next release."""
    ordered = sorted(events, key=lambda e: (e.at, e.kind != "change"))
    latest: dict[str, int] = {}  # plugin -> index of its latest release
    chains: dict[int, list[Event]] = {}
    for index, event in enumerate(ordered):
        if not event.plugin_id:
            continue
        if event.kind == "change" and event.key in RELEASES:
            latest[event.plugin_id] = index
            chains[index] = [event]
            continue
        cause = latest.get(event.plugin_id)
        if cause is None:
            continue
        release = ordered[cause]
        if event.kind == "alert" and event.version == release.version:
            event.cause = cause
            chains[cause].append(event)
        elif event.kind == "change" and event.key in REMEDIES and _remedies(event, release):
            chains[cause].append(event)
    found = [chains[i] for i in sorted(chains, reverse=True)
             if any(e.kind == "alert" for e in chains[i])]
    return Timeline(ordered, found)


def _remedies(remedy: Event, release: Event) -> bool:
    """Whether `remedy` takes away what `release` put out (a rollback names the version it
    went back to, so it matches any release of its plugin)."""
    return remedy.version == release.version or remedy.key == "plugin.rollback"
