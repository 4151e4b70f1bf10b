"""Server-side login sessions: the cookie carries a random token; the database decides if it is valid.

Revoking a session row (logout, force logout, deactivation) takes effect on that browser's next
request, on every worker and host.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, contains_eager

from cms.models import Agency, User, UserSession, utcnow

# Refresh last_seen at most this often, so ordinary page views do not write on every request.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(session: Session, user: User, ip: str | None, user_agent: str | None) -> str:
    """Add a new login session for `user` (the caller commits); return its token."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=_hash(token),
            ip=ip,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    user.session_token = token
    return token


def load_session_user(
    session: Session, token: str, idle_timeout: timedelta, now: datetime | None = None
) -> User | None:
    """Return the active user owning live session `token`, or None (revoked, idle, inactive)."""
    now = now or utcnow()
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .join(Agency, Agency.id == User.agency_id)
        # Every page shows the agency: load it with the session instead of a query per page.
        .options(contains_eager(User.agency))
        .where(
            UserSession.token_hash == _hash(token),
            UserSession.revoked_at.is_(None),
            User.is_active.is_(True),
            Agency.is_active.is_(True),
        )
    ).first()
    if row is None:
        return None
    user_session, user = row
    if now - user_session.last_seen_at > idle_timeout:
        user_session.revoked_at = now
        user_session.revoked_reason = "idle"
        session.commit()
        return None
    if now - user_session.last_seen_at > LAST_SEEN_RESOLUTION:
        user_session.last_seen_at = now
        session.commit()
    user.session_token = token
    return user


def revoke_session(session: Session, token: str, reason: str) -> None:
    """Revoke one session by token (the caller commits)."""
    session.execute(
        update(UserSession)
        .where(UserSession.token_hash == _hash(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def revoke_user_sessions(session: Session, user_id: int, reason: str) -> int:
    """Revoke every live session of a user (the caller commits); return how many."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def count_live_sessions(session: Session, user_id: int) -> int:
    """Return how many unrevoked sessions a user has."""
    return len(
        session.scalars(
            select(UserSession.id).where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
            )
        ).all()
    )
