"""Admin API tokens and the `admin_api` view decorator for /api/admin/*.

A token is shown once (`flask token create`); only its SHA-256 is stored. `Authorization: Bearer
TOKEN` acts as that admin with no session and no CSRF check (a browser never sends the header on
its own). Without the header the login session is used, and its unsafe requests need CSRF.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import current_app, g, request
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cms.app_state import client_ip
from cms.audit import Actor, record_event
from cms.errors import NotFound, PermissionDenied, ValidationFailed, error_response
from cms.models import AdminToken, Agency, Role, User, utcnow

F = TypeVar("F", bound=Callable[..., Any])

TOKEN_PREFIX = "cms_"
NAME_MAX = 80
# Refresh last_used_at at most this often, so API calls do not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class TokenRow:
    """A token as listed: never the token itself."""

    id: int
    username: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = None

    def status(self, now: datetime | None = None) -> str:
        """"active", "revoked" or "expired"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: The longest a token may live, and the units `parse_lifetime` reads.
MAX_LIFETIME = timedelta(days=3650)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_lifetime(text: str) -> timedelta:
    """"30d", "12h", "90m", "2w", "45s" as a timedelta; ValidationFailed otherwise."""
    raw = text.strip().lower()
    number, unit = raw[:-1], raw[-1:]
    if unit not in _UNITS or not number.isdigit() or int(number) < 1:
        raise ValidationFailed(f"--expires-in must be a whole number and a unit (s, m, h, d or w), "
                               f"such as 30d, not {text.strip()[:20]!r}.")
    lifetime = timedelta(seconds=int(number[:9]) * _UNITS[unit])
    if lifetime > MAX_LIFETIME:
        raise ValidationFailed("--expires-in may be at most 3650d (ten years).")
    return lifetime


def create_token(session: Session, actor: Actor, username: str, name: str | None = None,
                 expires_in: timedelta | None = None) -> tuple[AdminToken, str]:
    """Create and commit a token for admin `username`, valid for `expires_in` (None: until
    revoked); return it with the token (shown once).

    Raises NotFound (no such user), PermissionDenied (not an active admin) or ValidationFailed.
    """
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"There is no user {username.strip()[:64]!r}.")
    if user.role is not Role.ADMIN or not user.is_active:
        raise PermissionDenied(f"{user.username} is not an active admin: only admins get API tokens.")
    label = (name or "").strip() or f"{user.username} API token"
    if len(label) > NAME_MAX:
        raise ValidationFailed(f"The name may have at most {NAME_MAX} characters.",
                               {"name": [f"Use at most {NAME_MAX} characters."]})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + expires_in if expires_in is not None else None
    row = AdminToken(user_id=user.id, name=label, token_hash=hash_token(token),
                     expires_at=expires_at)
    session.add(row)
    session.flush()
    record_event(session, actor, "token.create", target_type="token", target_id=row.id,
                 target_label=f"{label} ({user.username})", agency_id=user.agency_id,
                 after={"user": user.username, "name": label,
                        "expires_at": expires_at.isoformat() if expires_at else None})
    session.commit()
    return row, token


def revoke_token(session: Session, actor: Actor, token_id: int) -> bool:
    """Revoke and commit; returns False when it was already revoked. Raises NotFound."""
    row = session.get(AdminToken, token_id)
    if row is None:
        raise NotFound(f"There is no token #{token_id}.")
    if row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    record_event(session, actor, "token.revoke", target_type="token", target_id=row.id,
                 target_label=f"{row.name} ({row.user.username})", agency_id=row.user.agency_id,
                 before={"revoked": False}, after={"revoked": True})
    session.commit()
    return True


def list_tokens(session: Session) -> list[TokenRow]:
    """Every token, newest first."""
    rows = session.execute(
        select(AdminToken, User.username).join(User, User.id == AdminToken.user_id)
        .order_by(AdminToken.id.desc())
    )
    return [TokenRow(t.id, username, t.name, t.created_at, t.last_used_at, t.revoked_at,
                     t.expires_at) for t, username in rows]


def authenticate_token(session: Session, token: str, now: datetime | None = None) -> User | None:
    """The active admin (of an active agency) owning live `token` (not revoked, not expired),
    or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = now or utcnow()
    row = session.execute(
        select(AdminToken, User)
        .join(User, User.id == AdminToken.user_id)
        .join(Agency, Agency.id == User.agency_id)
        .where(
            AdminToken.token_hash == hash_token(token),
            AdminToken.revoked_at.is_(None),
            or_(AdminToken.expires_at.is_(None), AdminToken.expires_at > now),
            User.is_active.is_(True),
            User.role == Role.ADMIN,
            Agency.is_active.is_(True),
        )
    ).first()
    if row is None:
        return None
    admin_token, user = row
    if admin_token.last_used_at is None or now - admin_token.last_used_at > LAST_USED_RESOLUTION:
        admin_token.last_used_at = now
        session.commit()
    return user  # type: ignore[no-any-return]


# The decorator ---------------------------------------------------------------------------------

def unauthorized(message: str) -> Any:
    """The 401 answer for the JSON APIs (with the Bearer challenge)."""
    response = error_response(401, "unauthorized", "Log in required", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="cms"'
    return response


def admin_api(view: F) -> F:
    """For /api/admin/* views: a bearer token or an admin's login session (with CSRF on unsafe
    methods). Answers 401 JSON (no or bad credentials) or 403 (not an admin). The view reads
    the caller with `api_user()` / `api_actor()`."""
    from cms.extensions import csrf, db

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return unauthorized("Send Authorization: Bearer TOKEN.")
            user = authenticate_token(db.session, token.strip())
            if user is None:
                return unauthorized("This token is not valid (unknown, revoked, expired, or not an admin's).")
            g.api_user = user
        else:
            if not current_user.is_authenticated:
                return unauthorized("Log in, or send Authorization: Bearer TOKEN.")
            if not current_user.is_admin:
                raise PermissionDenied("This API is for administrators.")
            if request.method not in SAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
                csrf.protect()
            g.api_user = current_user._get_current_object()
        return view(*args, **kwargs)

    # CSRF is checked above, only for session requests; bearer requests have none to check.
    csrf.exempt(wrapped)
    return wrapped  # type: ignore[return-value]


def api_user() -> User:
    """The admin calling this `admin_api` view."""
    return g.api_user  # type: ignore[no-any-return]


def api_actor() -> Actor:
    """The admin calling this `admin_api` view, as an Actor with this request's IP and id."""
    return Actor.for_user(api_user(), client_ip(), g.get("request_id"))


__all__ = [
    "TokenRow",
    "admin_api",
    "api_actor",
    "api_user",
    "authenticate_token",
    "create_token",
    "hash_token",
    "list_tokens",
    "parse_lifetime",
    "revoke_token",
    "unauthorized",
]
