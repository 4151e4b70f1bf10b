"""What the CMS keeps for plugins: installs and grants, their key-value storage, the mail outbox,
and the flight inventory the terminal sells from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (JSON, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from cms.extensions import db
from cms.models.types import UTCDateTime, utcnow


class PluginInstall(db.Model):  # type: ignore[name-defined,misc]
    """A plugin the CMS runs: on or off, the capabilities an admin granted it, and which versions
    agents get: `version` (current), `canary_version` for `canary_percent` of agents (a sticky
    cohort), and `previous_version`, the last good one a rollback returns to."""

    __tablename__ = "plugin_installs"

    plugin_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    granted: Mapped[list[str]] = mapped_column(JSON, default=list)
    canary_version: Mapped[str | None] = mapped_column(String(64))
    canary_percent: Mapped[int] = mapped_column(Integer, default=0)
    previous_version: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PluginVersion(db.Model):  # type: ignore[name-defined,misc]
    """One version of a plugin, as uploaded (or bundled): its built manifest and module, who
    signed it, what the staging gate measured, and whether it is quarantined."""

    __tablename__ = "plugin_versions"
    __table_args__ = (UniqueConstraint("plugin_id", "version", name="uq_plugin_versions"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin_id: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    manifest_text: Mapped[str] = mapped_column(Text)
    wasm: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded once per process
    vectors: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(16), default="upload")  # "bundled" or "upload"
    signer_key_id: Mapped[str | None] = mapped_column(String(16))
    uploaded_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: pending, passed, failed (vectors, soak or load) or regressed (>20 % fuel or memory).
    gate_status: Mapped[str] = mapped_column(String(12), default="pending")
    gate_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gate_override: Mapped[str | None] = mapped_column(String(500))
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quarantine_reason: Mapped[str | None] = mapped_column(String(500))


class TrustedKey(db.Model):  # type: ignore[name-defined,misc]
    """An author's public key whose signed packages the CMS accepts."""

    __tablename__ = "trusted_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(80))
    added_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PluginValue(db.Model):  # type: ignore[name-defined,misc]
    """One key of a plugin's storage. `owner_id` is the agency ("plugin" scope), the agent or the
    client, always within `agency_id`."""

    __tablename__ = "plugin_values"
    __table_args__ = (
        UniqueConstraint("plugin_id", "scope", "owner_id", "key", name="uq_plugin_values_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin_id: Mapped[str] = mapped_column(String(32))
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(8))
    owner_id: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[Any] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OutboxMail(db.Model):  # type: ignore[name-defined,misc]
    """A mail a plugin sent: queued in the same transaction as the call, delivered after it."""

    __tablename__ = "outbox_mails"
    __table_args__ = (Index("ix_outbox_mails_agency_created", "agency_id", "created_at"),
                      Index("ix_outbox_mails_status_deliver_after", "status", "deliver_after"))

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    plugin_id: Mapped[str] = mapped_column(String(32))
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    #: queued (in its undo window, waiting for the relay, or kept in the outbox without one),
    #: sending (claimed by one worker's courier), sent, failed (see error), or undone (by its
    #: sender before it left).
    status: Mapped[str] = mapped_column(String(8), default="queued")
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the courier may take it: the end of the sender's undo window, of a retry's backoff,
    #: or of a claim's lease. None: kept in the outbox (no relay when it was written).
    deliver_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Hand-overs the relay turned away for a while (4xx, down); failed after MAX_ATTEMPTS.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Flight(db.Model):  # type: ignore[name-defined,misc]
    """A scheduled flight with seats left and fares per cabin (seeded by `flask seed`)."""

    __tablename__ = "flights"
    __table_args__ = (Index("ix_flights_route_date", "origin", "destination", "departure_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier: Mapped[str] = mapped_column(String(2))
    flight_number: Mapped[str] = mapped_column(String(4))
    origin: Mapped[str] = mapped_column(String(3))
    destination: Mapped[str] = mapped_column(String(3))
    departure_date: Mapped[date] = mapped_column(Date)
    departs: Mapped[str] = mapped_column(String(5))
    arrives: Mapped[str] = mapped_column(String(5))
    seats: Mapped[dict[str, int]] = mapped_column(JSON)
    fares: Mapped[dict[str, float]] = mapped_column(JSON)
