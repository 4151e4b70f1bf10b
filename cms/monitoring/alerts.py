"""Alerts in the database: opened once per incident, bumped while open, acknowledged by admins.

An incident is (kind, plugin, version). While its alert is open, further detections only bump
`count` and `last_seen` (and may raise the severity). After an admin acknowledges it, the same
incident stays folded into the acknowledged alert as long as it keeps being seen within
`renotify_s`; only a recurrence after that quiet period (or a worse severity) opens a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cms.audit import Actor, record_event
from cms.errors import NotFound
from cms.models import Alert, Role, User, utcnow
from cms.monitoring.detectors import SEVERITY_RANK, Finding

ALERTS_PAGE = "/admin/alerts"


@dataclass(frozen=True)
class Raised:
    """An alert that needs telling: just opened, or escalated to a worse severity."""

    alert: Alert
    event: str  # "opened" or "escalated"


def open_key(kind: str, plugin_id: str | None, version: str | None) -> str:
    return f"{kind}|{plugin_id or '-'}|{version or '-'}"[:140]


def record(session: Session, finding: Finding, now: datetime | None = None,
           renotify_s: int = 900) -> Raised | None:
    """Record `finding` and commit; return what needs telling (None: a known incident)."""
    now = now or utcnow()
    key = open_key(finding.kind, finding.plugin_id, finding.version)
    for _ in range(2):  # a second round when another worker opened it at the same moment
        alert = session.scalar(select(Alert).where(Alert.open_key == key))
        if alert is not None:
            worse = SEVERITY_RANK[finding.severity] > SEVERITY_RANK.get(alert.severity, 0)
            _bump(alert, finding, now, worse)
            session.commit()
            return Raised(alert, "escalated") if worse else None
        quiet_since = now - timedelta(seconds=renotify_s)
        acknowledged = session.scalar(
            select(Alert).where(Alert.kind == finding.kind,
                                Alert.plugin_id.is_not_distinct_from(finding.plugin_id),
                                Alert.version.is_not_distinct_from(finding.version),
                                Alert.acknowledged_at.is_not(None), Alert.last_seen >= quiet_since)
            .order_by(Alert.id.desc()).limit(1))
        if acknowledged is not None and (SEVERITY_RANK[finding.severity]
                                         <= SEVERITY_RANK.get(acknowledged.severity, 0)):
            _bump(acknowledged, finding, now, worse=False)
            session.commit()
            return None
        alert = Alert(kind=finding.kind, plugin_id=finding.plugin_id, version=finding.version,
                      severity=finding.severity, message=finding.message[:1000],
                      details=dict(finding.details), first_seen=now, last_seen=now, count=1,
                      open_key=key)
        session.add(alert)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return Raised(alert, "opened")
    return None


def _bump(alert: Alert, finding: Finding, now: datetime, worse: bool) -> None:
    alert.count += 1
    alert.last_seen = now
    if worse:
        alert.severity = finding.severity
    if worse or alert.is_open:  # an open alert shows the latest numbers
        alert.message = finding.message[:1000]
        alert.details = {**alert.details, **finding.details}


def note(session: Session, alert: Alert, **details: Any) -> None:
    """Add `details` to the alert (e.g. that it quarantined the version) and commit."""
    alert.details = {**alert.details, **details}
    session.commit()


def acknowledge(session: Session, actor: Actor, alert_id: int) -> bool:
    """Acknowledge an open alert and audit it; returns False when it already was. Raises NotFound."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"There is no alert #{alert_id}.")
    if not alert.is_open:
        return False
    alert.acknowledged_by, alert.acknowledged_at, alert.open_key = actor.username[:80], utcnow(), None
    record_event(session, actor, "alert.acknowledge", target_type="alert", target_id=alert.id,
                 target_label=f"{alert.kind}: {alert.subject}", agency_id=None,
                 before={"acknowledged": False}, after={"acknowledged": True})
    session.commit()
    return True


def open_alerts(session: Session) -> list[Alert]:
    """Open alerts, critical first, newest first."""
    rows = session.scalars(select(Alert).where(Alert.acknowledged_at.is_(None))
                           .order_by(Alert.last_seen.desc(), Alert.id.desc()))
    return sorted(rows, key=lambda a: -SEVERITY_RANK.get(a.severity, 0))


def recent_alerts(session: Session, limit: int = 100) -> list[Alert]:
    """The newest acknowledged alerts."""
    return list(session.scalars(select(Alert).where(Alert.acknowledged_at.is_not(None))
                                .order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)))


@dataclass(frozen=True)
class Summary:
    """What the admin banner shows."""

    open: int
    critical: int
    newest: str | None


def summary(session: Session) -> Summary:
    rows = session.execute(select(Alert.severity, func.count()).where(Alert.acknowledged_at.is_(None))
                           .group_by(Alert.severity)).all()
    counts = {severity: int(n) for severity, n in rows}
    newest = None
    if counts:
        latest = session.scalar(select(Alert).where(Alert.acknowledged_at.is_(None))
                                .order_by(Alert.last_seen.desc()).limit(1))
        newest = f"{latest.kind.replace('_', ' ')}: {latest.subject}" if latest else None
    return Summary(sum(counts.values()), counts.get("critical", 0), newest)


def admin_emails(session: Session) -> list[str]:
    """The addresses of active admins, for alert mail."""
    return sorted({e for e in session.scalars(
        select(User.email).where(User.role == Role.ADMIN, User.is_active.is_(True),
                                 User.email.is_not(None))) if e})


def payload(alert: Alert, event: str) -> dict[str, Any]:
    """The JSON a webhook receives (and the mail is written from)."""
    return {
        "event": event,
        "alert": {
            "id": alert.id, "kind": alert.kind, "severity": alert.severity,
            "plugin_id": alert.plugin_id, "version": alert.version, "subject": alert.subject,
            "message": alert.message, "details": alert.details, "count": alert.count,
            "first_seen": alert.first_seen.isoformat(), "last_seen": alert.last_seen.isoformat(),
            "quarantined": bool(alert.details.get("quarantined")),
        },
        "page": ALERTS_PAGE,
        "runbook": "docs/runbook.md",
    }
