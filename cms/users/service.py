"""User management services shared by the admin UI and the `flask user` commands.

Every change commits together with its audit event; password hashes never reach the audit log.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from cms.audit import Actor, record_event
from cms.auth.passwords import Passwords, password_problem
from cms.auth.sessions import revoke_user_sessions
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.models import Agency, AuditEvent, Role, User, UserSession, utcnow
from cms.users.agencies import add_agency, find_agency_by_name
from cms.paging import Page, paginate

logger = logging.getLogger(__name__)

USERNAME_PATTERN = re.compile(r"^[a-z0-9._-]{3,64}$")
DISPLAY_NAME_MAX = 120
EMAIL_MAX = 254
GENERATED_PASSWORD_LENGTH = 16
# No look-alikes (0/O, 1/l/I), so a password read off the screen is typed right the first time.
GENERATED_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
INVALID_MESSAGE = "The user was not saved: please check the marked fields."


@dataclass(frozen=True)
class UserFilters:
    """Filters for the user list; None means "any"."""

    q: str = ""
    agency_id: int | None = None
    role: Role | None = None
    active: bool | None = None


@dataclass(frozen=True)
class UserOverview:
    """What the admin user page shows besides the user itself."""

    user: User
    live_sessions: int
    recent_events: list[AuditEvent]


def normalize_username(username: str) -> str:
    return username.strip().lower()


def generate_password() -> str:
    """Return a random password of GENERATED_PASSWORD_LENGTH characters."""
    return "".join(
        secrets.choice(GENERATED_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH)
    )


def parse_role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


def _new_user_problems(
    username: str, display_name: str, email: str | None, role: str, password: str
) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if not USERNAME_PATTERN.match(username):
        problems["username"] = [
            "Use 3 to 64 characters: lower-case letters, digits, dots, dashes or underscores."
        ]
    if not display_name:
        problems["display_name"] = ["Enter the person's name."]
    elif len(display_name) > DISPLAY_NAME_MAX:
        problems["display_name"] = [f"Use at most {DISPLAY_NAME_MAX} characters."]
    if email:
        if len(email) > EMAIL_MAX:
            problems["email"] = [f"Use at most {EMAIL_MAX} characters."]
        else:
            try:
                validate_email(email, check_deliverability=False)
            except EmailNotValidError:
                problems["email"] = ["Enter a valid email address, or leave it empty."]
    if parse_role(role) is None:
        problems["role"] = ["Choose agent or admin."]
    problem = password_problem(password)
    if problem:
        problems["password"] = [problem]
    return problems


def _user_snapshot(user: User) -> dict[str, object]:
    """The audited view of a user: never the password hash."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role.value,
        "agency_id": user.agency_id,
        "is_active": user.is_active,
    }


def _taken(username: str) -> Conflict:
    return Conflict(f"The username {username!r} is taken.", fields={"username": ["This username is taken."]})


def _add_user(
    session: Session,
    passwords: Passwords,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    email: str | None,
    role: str,
    agency_id: int | None,
    password: str,
) -> User:
    username = normalize_username(username)
    display_name = display_name.strip()
    email = (email or "").strip().lower() or None
    problems = _new_user_problems(username, display_name, email, role, password)
    if agency_id is None or session.get(Agency, agency_id) is None:
        problems["agency_id"] = ["Choose an agency."]
    if problems:
        raise ValidationFailed(INVALID_MESSAGE, problems)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise _taken(username)
    user = User(
        agency_id=agency_id,
        username=username,
        display_name=display_name,
        email=email,
        role=Role(role),
        password_hash=passwords.hash(password),
        password_changed_at=utcnow(),
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        actor,
        "user.create",
        target_type="user",
        target_id=user.id,
        target_label=user.username,
        agency_id=user.agency_id,
        after=_user_snapshot(user),
    )
    return user


def _commit_new_user(session: Session, username: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        # Someone else created the same username between our check and our commit.
        session.rollback()
        raise _taken(username) from None


def create_user(
    session: Session,
    passwords: Passwords,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    email: str | None,
    role: str,
    agency_id: int | None,
    password: str,
) -> User:
    """Create and commit a user; raises ValidationFailed or Conflict (taken username), writing nothing."""
    try:
        user = _add_user(
            session, passwords, actor, username=username, display_name=display_name,
            email=email, role=role, agency_id=agency_id, password=password,
        )
    except (ValidationFailed, Conflict):
        session.rollback()
        raise
    _commit_new_user(session, user.username)
    logger.info("user %s created by %s", user.username, actor.username)
    return user


def create_user_in_agency(
    session: Session,
    passwords: Passwords,
    actor: Actor,
    *,
    agency_name: str,
    username: str,
    display_name: str,
    email: str | None,
    role: str,
    password: str,
) -> User:
    """Create a user in the agency named `agency_name`, creating that agency if needed (one commit).

    Raises ValidationFailed or Conflict, writing nothing (not even the agency).
    """
    try:
        agency = find_agency_by_name(session, agency_name) or add_agency(session, actor, agency_name)
        user = _add_user(
            session, passwords, actor, username=username, display_name=display_name,
            email=email, role=role, agency_id=agency.id, password=password,
        )
    except (ValidationFailed, Conflict):
        session.rollback()
        raise
    _commit_new_user(session, user.username)
    return user


def get_user(session: Session, user_id: int) -> User:
    """Return the user with its agency; raises NotFound."""
    user = session.scalar(
        select(User).where(User.id == user_id).options(joinedload(User.agency))
    )
    if user is None:
        raise NotFound("This user does not exist.")
    return user


def get_user_by_username(session: Session, username: str) -> User:
    """Return the user named `username` (any case); raises NotFound."""
    user = session.scalar(select(User).where(User.username == normalize_username(username)))
    if user is None:
        raise NotFound(f"There is no user named {normalize_username(username)!r}.")
    return user


def _audit_user(
    session: Session, actor: Actor, action: str, user: User,
    before: dict[str, object] | None, after: dict[str, object] | None,
) -> None:
    record_event(
        session, actor, action, target_type="user", target_id=user.id,
        target_label=user.username, agency_id=user.agency_id, before=before, after=after,
    )


def deactivate_user(session: Session, actor: Actor, user_id: int) -> int:
    """Deactivate a user and revoke all their sessions; return how many were revoked.

    Raises NotFound, or Conflict (already inactive, or the actor's own account).
    """
    user = get_user(session, user_id)
    if actor.user_id == user.id:
        raise Conflict("You cannot deactivate your own account.")
    if not user.is_active:
        raise Conflict(f"{user.username} is already deactivated.")
    user.is_active = False
    revoked = revoke_user_sessions(session, user.id, "deactivated")
    _audit_user(
        session, actor, "user.deactivate", user,
        {"is_active": True}, {"is_active": False, "sessions_revoked": revoked},
    )
    session.commit()
    return revoked


def reactivate_user(session: Session, actor: Actor, user_id: int) -> User:
    """Let a deactivated user log in again; raises NotFound or Conflict (already active)."""
    user = get_user(session, user_id)
    if user.is_active:
        raise Conflict(f"{user.username} is already active.")
    user.is_active = True
    _audit_user(session, actor, "user.reactivate", user, {"is_active": False}, {"is_active": True})
    session.commit()
    return user


def reset_password(
    session: Session, passwords: Passwords, actor: Actor, user_id: int, password: str | None
) -> str | None:
    """Set a new password (None: generate one) and revoke all the user's sessions.

    Returns the generated password (to show once), or None when `password` was given.
    Raises NotFound or ValidationFailed (weak password; nothing written).
    """
    user = get_user(session, user_id)
    generated = generate_password() if password is None else None
    new_password = generated or password or ""
    problem = password_problem(new_password)
    if problem:
        raise ValidationFailed("The password was not changed.", {"password": [problem]})
    changed_before = user.password_changed_at
    user.password_hash = passwords.hash(new_password)
    user.password_changed_at = utcnow()
    revoked = revoke_user_sessions(session, user.id, "password_reset")
    _audit_user(
        session, actor, "user.password_reset", user,
        {"password_changed_at": changed_before.isoformat() if changed_before else None},
        {
            "password_changed_at": user.password_changed_at.isoformat(),
            "generated": generated is not None,
            "sessions_revoked": revoked,
        },
    )
    session.commit()
    return generated


def force_logout(session: Session, actor: Actor, user_id: int) -> int:
    """Revoke every live session of the user; return how many. Raises NotFound."""
    user = get_user(session, user_id)
    revoked = revoke_user_sessions(session, user.id, "forced_logout")
    _audit_user(
        session, actor, "user.force_logout", user, {"open_sessions": revoked}, {"open_sessions": 0}
    )
    session.commit()
    return revoked


def list_users(
    session: Session, filters: UserFilters, page: int = 1, per_page: int = 50
) -> Page[User]:
    """Return a page of users matching `filters`, ordered by username."""
    stmt = select(User).options(joinedload(User.agency)).order_by(User.username)
    q = filters.q.strip().lower()
    if q:
        stmt = stmt.where(
            or_(
                User.username.startswith(q, autoescape=True),
                func.lower(User.display_name).startswith(q, autoescape=True),
            )
        )
    if filters.agency_id is not None:
        stmt = stmt.where(User.agency_id == filters.agency_id)
    if filters.role is not None:
        stmt = stmt.where(User.role == filters.role)
    if filters.active is not None:
        stmt = stmt.where(User.is_active.is_(filters.active))
    return paginate(session, stmt, page, per_page)


def user_overview(
    session: Session, user_id: int, idle_timeout: timedelta, recent: int = 10
) -> UserOverview:
    """Return the user, their live (unrevoked, not idle) session count and recent audit events.

    Raises NotFound.
    """
    user = get_user(session, user_id)
    live = session.scalar(
        select(func.count(UserSession.id)).where(
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
            UserSession.last_seen_at > utcnow() - idle_timeout,
        )
    ) or 0
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(recent)
    ).all()
    return UserOverview(user, live, list(events))
