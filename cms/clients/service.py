"""Client records: read, create, edit and annotate, always scoped to the actor's agency.

Each change commits together with its audit event and an entry on the client's timeline.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cms.audit import Actor, changes, record_event
from cms.clients.rules import (
    FIELD_LABELS,
    PREFERENCE_FIELDS,
    ClientInput,
    client_problems,
    note_problem,
)
from cms.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cms.models import Activity, ActivityKind, Client

logger = logging.getLogger(__name__)

INVALID_MESSAGE = "The client was not saved: please check the marked fields."
STALE_MESSAGE = (
    "Someone else changed this client while you were editing. "
    "Reload the page to see their version, then apply your change again."
)


def get_client(session: Session, agency_id: int | None, client_id: int) -> Client:
    """Return the agency's client; raises NotFound (also when it belongs to another agency)."""
    client = session.scalar(
        select(Client).where(Client.id == client_id, Client.agency_id == agency_id)
    )
    if client is None:
        raise NotFound("This client does not exist.")
    return client


def profile_of(client: Client) -> dict[str, object]:
    """The client's editable columns, in the shape of `ClientInput.profile()`."""
    return {
        "first_name": client.first_name,
        "last_name": client.last_name,
        "email": client.email,
        "phone": client.phone,
        "notes": client.notes or "",
        "preferences": dict(client.preferences or {}),
    }


def _check(data: ClientInput) -> None:
    problems = client_problems(data)
    if problems:
        raise ValidationFailed(INVALID_MESSAGE, problems)


def _timeline_entry(client: Client, actor: Actor, kind: ActivityKind, body: str) -> Activity:
    return Activity(
        agency_id=client.agency_id,
        client_id=client.id,
        user_id=actor.user_id,
        kind=kind.value,
        body=body,
    )


def create_client(session: Session, actor: Actor, data: ClientInput) -> Client:
    """Create and commit a client of the actor's agency; raises ValidationFailed (nothing written)."""
    _check(data)
    if actor.agency_id is None:
        raise PermissionDenied("Only members of an agency can create clients.")
    profile = data.profile()
    client = Client(agency_id=actor.agency_id, created_by_id=actor.user_id, **profile)
    session.add(client)
    session.flush()
    session.add(_timeline_entry(client, actor, ActivityKind.SYSTEM, "Client record created"))
    record_event(
        session,
        actor,
        "client.create",
        target_type="client",
        target_id=client.id,
        target_label=client.full_name,
        after=profile,
    )
    session.commit()
    logger.info("client %s created by %s", client.id, actor.username)
    return client


def update_client(
    session: Session, actor: Actor, client_id: int, data: ClientInput, expected_version: int | None
) -> tuple[Client, list[str]]:
    """Save the edited profile; return the client and the names of the fields that changed.

    Raises NotFound, ValidationFailed, or Conflict when `expected_version` is not the current
    version (someone saved in between); in every error case nothing is written.
    """
    client = get_client(session, actor.agency_id, client_id)
    if expected_version != client.version:
        raise Conflict(STALE_MESSAGE)
    _check(data)
    edited = data.profile()
    # Preferences the form does not manage (e.g. home_airport from an import) are kept as they are.
    kept = {k: v for k, v in (client.preferences or {}).items() if k not in PREFERENCE_FIELDS}
    edited["preferences"] = {**kept, **edited["preferences"]}
    before, after = changes(profile_of(client), edited)
    if not after:
        return client, []
    for name, value in after.items():
        setattr(client, name, value)
    labels = ", ".join(FIELD_LABELS[name] for name in after)
    session.add(_timeline_entry(client, actor, ActivityKind.SYSTEM, f"Profile updated: {labels}"))
    record_event(
        session,
        actor,
        "client.update",
        target_type="client",
        target_id=client.id,
        target_label=client.full_name,
        before=before,
        after=after,
    )
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        raise Conflict(STALE_MESSAGE) from None
    return client, list(after)


#: How long after adding it an agent can take a note back.
NOTE_UNDO_SECONDS = 120


def undo_note(session: Session, actor: Actor, client_id: int, note_id: int,
              now: datetime) -> None:
    """Take back a note the agent added in the last NOTE_UNDO_SECONDS, and commit (audited).

    Raises NotFound (no such note of this client, in the agent's agency, by this agent) or
    Conflict (too late: it stays on the timeline)."""
    client = get_client(session, actor.agency_id, client_id)
    note = session.get(Activity, note_id)
    if (note is None or note.client_id != client.id or note.kind != ActivityKind.NOTE.value
            or note.user_id != actor.user_id):
        raise NotFound("There is no such note of yours to undo.")
    created = note.created_at if note.created_at.tzinfo else note.created_at.replace(tzinfo=timezone.utc)
    if (now - created).total_seconds() > NOTE_UNDO_SECONDS:
        raise Conflict(f"A note can be undone for {NOTE_UNDO_SECONDS // 60} minutes after it "
                       "was added; this one stays on the timeline.")
    record_event(session, actor, "client.note.undo", target_type="client", target_id=client.id,
                 target_label=client.full_name, agency_id=client.agency_id,
                 before={"note": note.body[:500]}, after=None)
    session.delete(note)
    session.commit()


def add_note(session: Session, actor: Actor, client_id: int, body: str) -> Activity:
    """Add a note to the client's timeline and commit; raises NotFound or ValidationFailed."""
    client = get_client(session, actor.agency_id, client_id)
    problem = note_problem(body)
    if problem:
        raise ValidationFailed("The note was not added.", {"body": [problem]})
    note = _timeline_entry(client, actor, ActivityKind.NOTE, body.strip())
    session.add(note)
    session.commit()
    return note
