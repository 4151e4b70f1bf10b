"""Fixtures for the client area: two agencies with their agents, as service actors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.audit import Actor
from cms.extensions import db
from cms.models import Agency, User
from tests.conftest import Personas, create_personas


@dataclass
class World:
    """An open session with Alpha (agent alice, admin ada) and Beta (agent bob)."""

    session: Session
    alpha: Agency
    beta: Agency
    alice: Actor
    ada: Actor
    bob: Actor


@pytest.fixture
def world(any_db_app: Flask) -> Iterator[World]:
    personas: Personas = create_personas(any_db_app)
    with any_db_app.app_context():
        session = db.session

        def actor(username: str) -> Actor:
            return Actor.for_user(session.scalars(select(User).where(User.username == username)).one())

        yield World(
            session=session,
            alpha=session.get(Agency, personas.agency_a_id),
            beta=session.get(Agency, personas.agency_b_id),
            alice=actor(personas.agent_a),
            ada=actor(personas.admin),
            bob=actor(personas.agent_b),
        )
