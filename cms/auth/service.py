"""Authentication: check credentials under the throttle, open and close login sessions, audit both."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cms import monitoring

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.audit import Actor, record_event
from cms.auth.passwords import Passwords
from cms.auth.sessions import create_session, revoke_session
from cms.auth.throttle import LoginThrottle, ThrottleKey
from cms.errors import DomainError, Throttled
from cms.models import Agency, User, utcnow


class InvalidCredentials(DomainError):
    status = 401
    code = "invalid_credentials"
    title = "Login failed"


def normalize_username(username: str) -> str:
    return username.strip().lower()


@dataclass(frozen=True)
class LoginLimits:
    """Failures allowed per window: on one account from one address (then that pair waits out
    the window), and on one account from anywhere or from one address on any account (then a
    short delay that doubles with each failure, up to `max_delay_s`; never a lock-out)."""

    per_account_and_address: int = 5
    account_delay_after: int = 20
    address_delay_after: int = 30
    max_delay_s: int = 60


def _wait_text(seconds: int) -> str:
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def log_in(
    session: Session,
    passwords: Passwords,
    throttle: LoginThrottle,
    limits: LoginLimits,
    username: str,
    password: str,
    ip: str | None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> User:
    """Verify credentials and open a session; return the user with `session_token` set.

    Raises Throttled (with the seconds to wait) or InvalidCredentials; every outcome is
    audited and committed. A correct password from an address with no recent failures logs in
    whatever others tried on the account (LoginLimits).
    """
    name = normalize_username(username)[:64]
    address = ip or "-"
    pair = ThrottleKey(f"pair:{name}|{address}", limits.per_account_and_address)
    account = ThrottleKey(f"account:{name}", limits.account_delay_after, limits.max_delay_s)
    source = ThrottleKey(f"ip:{address}", limits.address_delay_after, limits.max_delay_s)
    keys = [pair, account, source]
    anonymous = Actor(None, name or "(blank)", None, ip=ip, request_id=request_id)

    found = throttle.check(keys)
    # The account's delay (many failures from anywhere) applies only to an address that failed
    # too, and runs from *its* last failure: an agent who mistyped once waits at most the
    # longest delay, however long an attacker elsewhere keeps the account busy.
    here = [found[k.name] for k in (pair, source) if found[k.name].count > 0]
    account_wait = (account.wait(found[account.name].count, 0, min(s.since_last for s in here))
                    if here else 0)
    wait = max(found[pair.name].wait, found[source.name].wait, account_wait)
    if wait:
        record_event(session, anonymous, "auth.login.throttled", target_type="user", target_label=name)
        session.commit()
        monitoring.login("throttled")
        raise Throttled(
            f"Too many failed login attempts. Try again in {_wait_text(wait)}.", retry_after=wait
        )

    found = session.execute(
        select(User.id, User.password_hash, User.is_active, Agency.is_active.label("agency_active"))
        .join(Agency, Agency.id == User.agency_id).where(User.username == name)
    ).first()
    # The slow part runs with no database connection held: end the read before hashing, so a
    # login storm queues on CPU, not on the connection pool.
    session.rollback()
    valid = passwords.verify(found.password_hash if found else None, password)
    new_hash = (passwords.hash(password) if valid and passwords.needs_rehash(found.password_hash)
                else None)
    user = session.get(User, found.id) if found is not None else None
    agency_active = found is not None and bool(found.agency_active)
    if user is None or not valid or not user.is_active or not agency_active:
        throttle.record_failure(keys)
        reason = "unknown user" if user is None else "bad password" if not valid else "inactive"
        record_event(
            session,
            Actor(user.id if user else None, name or "(blank)", user.agency_id if user else None,
                  ip=ip, request_id=request_id),
            "auth.login.failure",
            target_type="user",
            target_id=user.id if user else None,
            target_label=name,
            after={"reason": reason},
        )
        session.commit()
        monitoring.login("failure")
        # One message for every cause, so the form does not reveal which accounts exist.
        raise InvalidCredentials("Wrong username or password, or the account is deactivated.")

    if new_hash is not None and user.password_hash == found.password_hash:  # type: ignore[union-attr]
        user.password_hash = new_hash  # the parameters were older: upgraded transparently
    throttle.clear(pair)
    user.last_login_at = utcnow()
    create_session(session, user, ip, user_agent)
    record_event(
        session,
        Actor.for_user(user, ip, request_id),
        "auth.login.success",
        target_type="user",
        target_id=user.id,
        target_label=user.username,
    )
    session.commit()
    monitoring.login("success")
    return user


def log_out(session: Session, user: User, ip: str | None, request_id: str | None) -> None:
    """Revoke the user's current session and audit it."""
    if user.session_token:
        revoke_session(session, user.session_token, "logout")
    record_event(
        session,
        Actor.for_user(user, ip, request_id),
        "auth.logout",
        target_type="user",
        target_id=user.id,
        target_label=user.username,
    )
    session.commit()
