"""Clients (travellers), their activity timeline, and each user's recently viewed clients."""

from __future__ import annotations

import enum
import re
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cms.extensions import db
from cms.models.types import UTCDateTime, search_key, utcnow

NAME_LENGTH = 80
NAME_KEY_LENGTH = 2 * NAME_LENGTH + 1

_NOT_WORD = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(value: str) -> str:
    """Fold `value` for search: no accents, lower case, punctuation dropped, single spaces."""
    folded = unicodedata.normalize("NFKD", value)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    folded = _NOT_WORD.sub("", folded.replace("-", " "))
    return _SPACES.sub(" ", folded).strip()


def normalize_phone(value: str | None) -> str | None:
    """Digits only ("+44 20 7946-0000" -> "442079460000"); None when there are none."""
    digits = re.sub(r"\D", "", value or "")
    return digits or None


def normalize_email(value: str | None) -> str | None:
    return (value or "").strip().lower() or None


def client_search_keys(
    first_name: str, last_name: str, email: str | None, phone: str | None
) -> dict[str, str | None]:
    """The normalized key columns for a client; used by the ORM hook and by bulk inserts."""
    first, last = normalize_text(first_name), normalize_text(last_name)
    return {
        "first_last_key": f"{first} {last}".strip()[:NAME_KEY_LENGTH],
        "last_first_key": f"{last} {first}".strip()[:NAME_KEY_LENGTH],
        "email_key": normalize_email(email),
        "phone_key": normalize_phone(phone),
    }


class Client(db.Model):  # type: ignore[name-defined,misc]
    """A traveller of one agency. The `*_key` columns are normalized copies for prefix search."""

    __tablename__ = "clients"
    __table_args__ = (
        Index("ix_clients_agency_last_first", "agency_id", "last_first_key"),
        Index("ix_clients_agency_first_last", "agency_id", "first_last_key"),
        Index("ix_clients_agency_email", "agency_id", "email_key"),
        Index("ix_clients_agency_phone", "agency_id", "phone_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    first_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    last_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text, default="")
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_last_key: Mapped[str] = mapped_column(search_key(NAME_KEY_LENGTH))
    last_first_key: Mapped[str] = mapped_column(search_key(NAME_KEY_LENGTH))
    email_key: Mapped[str | None] = mapped_column(search_key(254))
    phone_key: Mapped[str | None] = mapped_column(search_key(32))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def refresh_search_keys(self) -> None:
        for name, value in client_search_keys(
            self.first_name, self.last_name, self.email, self.phone
        ).items():
            setattr(self, name, value)

    def __repr__(self) -> str:
        return f"<Client {self.id} {self.full_name!r}>"


@event.listens_for(Client, "before_insert")
@event.listens_for(Client, "before_update")
def _refresh_keys(mapper: object, connection: object, target: Client) -> None:
    target.refresh_search_keys()


class ActivityKind(str, enum.Enum):
    """What a timeline entry records; plugins add calls and mails."""

    NOTE = "note"
    CALL = "call"
    MAIL = "mail"
    BOOKING = "booking"
    SYSTEM = "system"


class Activity(db.Model):  # type: ignore[name-defined,misc]
    """One entry of a client's timeline, newest first."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_client_created", "client_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")


class RecentClient(db.Model):  # type: ignore[name-defined,misc]
    """When a user last opened a client: feeds "my recent clients" on the dashboard."""

    __tablename__ = "recent_clients"
    __table_args__ = (Index("ix_recent_clients_user_viewed", "user_id", "viewed_at"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    viewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship()
