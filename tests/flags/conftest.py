"""Flag fixtures: an admin Actor, a token factory, and FlagStores (simulated workers) that are
closed after the test."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import Engine

from cms.audit import Actor
from cms.auth.tokens import create_token
from cms.extensions import db
from cms.flags import FlagStore, SqlFlagSource
from cms.models import User
from cms.redis_client import make_redis
from tests.conftest import Personas

StoreFactory = Callable[..., FlagStore]


def actor_for(app: Flask, username: str) -> Actor:
    with app.app_context():
        return Actor.for_user(db.session.scalar(select(User).where(User.username == username)))


@pytest.fixture
def admin_actor(app: Flask, personas: Personas) -> Actor:
    return actor_for(app, personas.admin)


@pytest.fixture
def admin_token(app: Flask, admin_actor: Actor) -> str:
    with app.app_context():
        return create_token(db.session, admin_actor, "ada.admin", "tests")[1]


def engine_of(app: Flask) -> Engine:
    with app.app_context():
        return db.engine


@pytest.fixture
def make_store() -> Iterator[StoreFactory]:
    """`make_store(engine, redis_url=None, **options)`: a FlagStore with its own Redis client,
    like one worker; every store is closed at the end of the test."""
    stores: list[FlagStore] = []

    def build(engine: Engine | Callable[[], Engine], redis_url: str | None = None,
              **options: Any) -> FlagStore:
        provider = engine if callable(engine) else (lambda: engine)
        store = FlagStore(SqlFlagSource(provider), make_redis(redis_url, 0.25), **options)
        stores.append(store)
        return store

    yield build
    for store in stores:
        store.close()
