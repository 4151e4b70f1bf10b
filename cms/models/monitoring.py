"""Alerts raised by the monitoring detectors (cms.monitoring)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cms.extensions import db
from cms.models.types import UTCDateTime, utcnow


class Alert(db.Model):  # type: ignore[name-defined,misc]
    """One incident: a detector's kind for one plugin version (or none, for workers and
    logins). While it is open (not acknowledged) every further detection only bumps `count` and
    `last_seen`; `open_key` is unique among open alerts, so two workers cannot open it twice."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_last_seen", "last_seen"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    plugin_id: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))  # "warning" or "critical"
    message: Mapped[str] = mapped_column(String(1000))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)
    #: "kind|plugin|version" while open, NULL once acknowledged.
    open_key: Mapped[str | None] = mapped_column(String(140), unique=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None

    @property
    def subject(self) -> str:
        """What the alert is about: "softphone 1.1.0-leaky", or the kind for workers and logins."""
        if self.plugin_id:
            return f"{self.plugin_id} {self.version or ''}".strip()
        if self.kind == "worker_rss":
            return f"worker {self.details.get('worker', '')}".strip()
        return "logins"

    def __repr__(self) -> str:
        return f"<Alert {self.id} {self.kind} {self.plugin_id} {self.version} {self.severity}>"
