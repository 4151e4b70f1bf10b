"""The audit trail: who did what, to which record, from where.

Services receive an `Actor` (plain values) and call `record_event` inside their own transaction,
so an audited change and its audit event commit or roll back together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from cms.models import AuditEvent, Role, User


@dataclass(frozen=True)
class Actor:
    """Who is acting, as plain values: a logged-in user, or an anonymous name (failed logins, CLI)."""

    user_id: int | None
    username: str
    agency_id: int | None
    role: Role | None = None
    ip: str | None = None
    request_id: str | None = None

    @classmethod
    def for_user(cls, user: User, ip: str | None = None, request_id: str | None = None) -> "Actor":
        return cls(user.id, user.username, user.agency_id, user.role, ip, request_id)

    @classmethod
    def system(cls, name: str = "system") -> "Actor":
        """An actor for the command line and background work."""
        return cls(None, name, None)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def record_event(
    session: Session,
    actor: Actor,
    action: str,
    *,
    target_type: str | None = None,
    target_id: object = None,
    target_label: str | None = None,
    agency_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to `session` (the caller commits) and return it."""
    event = AuditEvent(
        actor_id=actor.user_id,
        actor_name=actor.username[:64],
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        target_label=None if target_label is None else target_label[:200],
        agency_id=agency_id if agency_id is not None else actor.agency_id,
        before=before,
        after=after,
        ip=actor.ip,
        request_id=actor.request_id,
    )
    session.add(event)
    return event


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return only the keys whose values differ, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}
