"""Feature flags and the single-row config version every change bumps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cms.extensions import db
from cms.models.types import UTCDateTime, utcnow


class FeatureFlag(db.Model):  # type: ignore[name-defined,misc]
    """A flag an admin has set (or a plugin's flag). `version` is per flag and guards concurrent
    edits (optimistic locking); `targeting` holds "agents", "agencies" and "roles" lists."""

    __tablename__ = "feature_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(300), default="")
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    rollout_percent: Mapped[int] = mapped_column(Integer, default=100)
    targeting: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The value when flags cannot be read (plugins: off; core flags: their declared default).
    default: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<FeatureFlag {self.key} {'on' if self.enabled else 'off'} {self.rollout_percent}%>"


class FlagVersion(db.Model):  # type: ignore[name-defined,misc]
    """One row (id 1): the config version, bumped in the same transaction as every flag change.
    Workers compare it with their snapshot's to know when to reload."""

    __tablename__ = "flag_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
