"""Client records: read, create, edit and annotate, always scoped to one agency."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.errors import NotFound
from cms.models import Client

logger = logging.getLogger(__name__)


def get_client(session: Session, agency_id: int | None, client_id: int) -> Client:
    """Return the agency's client; raises NotFound (also when it belongs to another agency)."""
    client = session.scalar(
        select(Client).where(Client.id == client_id, Client.agency_id == agency_id)
    )
    if client is None:
        raise NotFound("This client does not exist.")
    return client
