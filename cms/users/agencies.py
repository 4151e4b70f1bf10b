"""Agency (tenant) management: create, rename, activate and deactivate, list with counts.

Names are unique regardless of case. Deactivating an agency revokes its users' sessions; the
session loader and login already refuse users of inactive agencies.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cms.audit import Actor, record_event
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.models import Agency, Client, User, UserSession, utcnow

logger = logging.getLogger(__name__)

NAME_MIN = 2
NAME_MAX = 120
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class AgencyRow:
    """An agency with how many users and clients it has."""

    agency: Agency
    user_count: int
    client_count: int


def clean_agency_name(name: str) -> str:
    """Return `name` trimmed with inner runs of spaces collapsed; raises ValidationFailed."""
    cleaned = _SPACES.sub(" ", name).strip()
    if not NAME_MIN <= len(cleaned) <= NAME_MAX:
        raise ValidationFailed(
            "Please check the agency name.",
            {"name": [f"Use {NAME_MIN} to {NAME_MAX} characters."]},
        )
    return cleaned


def find_agency_by_name(session: Session, name: str) -> Agency | None:
    """Return the agency called `name` (any case, spaces collapsed), or None."""
    cleaned = _SPACES.sub(" ", name).strip().lower()
    return session.scalar(select(Agency).where(func.lower(Agency.name) == cleaned))


def _name_taken(session: Session, name: str, except_id: int | None = None) -> bool:
    stmt = select(Agency.id).where(func.lower(Agency.name) == name.lower())
    if except_id is not None:
        stmt = stmt.where(Agency.id != except_id)
    return session.scalar(stmt) is not None


def _taken(name: str) -> Conflict:
    return Conflict(
        f"An agency called {name!r} already exists.",
        fields={"name": ["An agency with this name already exists."]},
    )


def _commit(session: Session, name: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _taken(name) from None


def add_agency(session: Session, actor: Actor, name: str) -> Agency:
    """Add an agency and its audit event to `session` without committing; return it.

    Raises ValidationFailed or Conflict (name taken, in any case).
    """
    cleaned = clean_agency_name(name)
    if _name_taken(session, cleaned):
        raise _taken(cleaned)
    agency = Agency(name=cleaned, is_active=True)
    session.add(agency)
    session.flush()
    record_event(
        session, actor, "agency.create", target_type="agency", target_id=agency.id,
        target_label=agency.name, agency_id=agency.id,
        after={"name": agency.name, "is_active": True},
    )
    return agency


def create_agency(session: Session, actor: Actor, name: str) -> Agency:
    """Create and commit an agency; raises ValidationFailed or Conflict, writing nothing."""
    try:
        agency = add_agency(session, actor, name)
    except (ValidationFailed, Conflict):
        session.rollback()
        raise
    _commit(session, agency.name)
    logger.info("agency %r created by %s", agency.name, actor.username)
    return agency


def get_agency(session: Session, agency_id: int) -> Agency:
    """Return the agency; raises NotFound."""
    agency = session.get(Agency, agency_id)
    if agency is None:
        raise NotFound("This agency does not exist.")
    return agency


def rename_agency(session: Session, actor: Actor, agency_id: int, name: str) -> Agency:
    """Rename and commit; raises NotFound, ValidationFailed or Conflict (name taken)."""
    agency = get_agency(session, agency_id)
    cleaned = clean_agency_name(name)
    if cleaned == agency.name:
        return agency
    if _name_taken(session, cleaned, except_id=agency.id):
        raise _taken(cleaned)
    before = agency.name
    agency.name = cleaned
    record_event(
        session, actor, "agency.rename", target_type="agency", target_id=agency.id,
        target_label=cleaned, agency_id=agency.id, before={"name": before}, after={"name": cleaned},
    )
    _commit(session, cleaned)
    return agency


def set_agency_active(session: Session, actor: Actor, agency_id: int, active: bool) -> int:
    """Activate or deactivate an agency; deactivating revokes its users' sessions.

    Returns how many sessions were revoked. Raises NotFound, or Conflict (no change, or the
    actor's own agency).
    """
    agency = get_agency(session, agency_id)
    if agency.is_active == active:
        state = "active" if active else "deactivated"
        raise Conflict(f"{agency.name} is already {state}.")
    if not active and actor.agency_id == agency.id and actor.user_id is not None:
        raise Conflict("You cannot deactivate your own agency.")
    agency.is_active = active
    revoked = 0
    if not active:
        result = session.execute(
            update(UserSession)
            .where(
                UserSession.revoked_at.is_(None),
                UserSession.user_id.in_(select(User.id).where(User.agency_id == agency.id)),
            )
            .values(revoked_at=utcnow(), revoked_reason="agency_deactivated")
            .execution_options(synchronize_session=False)
        )
        revoked = int(result.rowcount or 0)  # type: ignore[attr-defined]
    after: dict[str, object] = {"is_active": active}
    if not active:
        after["sessions_revoked"] = revoked
    record_event(
        session, actor, "agency.activate" if active else "agency.deactivate",
        target_type="agency", target_id=agency.id, target_label=agency.name, agency_id=agency.id,
        before={"is_active": not active}, after=after,
    )
    session.commit()
    return revoked


def list_agencies(session: Session) -> list[AgencyRow]:
    """Return every agency by name, with user and client counts."""
    users = (
        select(User.agency_id, func.count(User.id).label("n")).group_by(User.agency_id).subquery()
    )
    clients = (
        select(Client.agency_id, func.count(Client.id).label("n"))
        .group_by(Client.agency_id)
        .subquery()
    )
    rows = session.execute(
        select(Agency, func.coalesce(users.c.n, 0), func.coalesce(clients.c.n, 0))
        .outerjoin(users, users.c.agency_id == Agency.id)
        .outerjoin(clients, clients.c.agency_id == Agency.id)
        .order_by(func.lower(Agency.name))
    ).all()
    return [AgencyRow(agency, int(n_users), int(n_clients)) for agency, n_users, n_clients in rows]


def agency_overview(session: Session, agency_id: int) -> AgencyRow:
    """Return one agency with its user and client counts; raises NotFound."""
    agency = get_agency(session, agency_id)
    n_users = session.scalar(select(func.count(User.id)).where(User.agency_id == agency.id))
    n_clients = session.scalar(select(func.count(Client.id)).where(Client.agency_id == agency.id))
    return AgencyRow(agency, int(n_users or 0), int(n_clients or 0))


def agency_choices(session: Session) -> list[tuple[int, str]]:
    """Return (id, label) for every agency by name; inactive ones are marked."""
    rows = session.execute(
        select(Agency.id, Agency.name, Agency.is_active).order_by(func.lower(Agency.name))
    ).all()
    return [(id_, name if active else f"{name} (inactive)") for id_, name, active in rows]
