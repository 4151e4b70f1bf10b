"""Shared fixtures: apps on SQLite (and PostgreSQL where asked), three personas, login helpers.

With CMS_REQUIRE_SERVICES=1 (as in CI), a missing PostgreSQL, Redis or browser fails the test
instead of skipping it.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient

from cms import create_app
from cms.config import Settings
from cms.extensions import db
from cms.models import Role
from tests import factories

REQUIRE_SERVICES = os.environ.get("CMS_REQUIRE_SERVICES") == "1"
POSTGRES_DSN = os.environ.get("CMS_TEST_POSTGRES_URL", "postgresql://127.0.0.1/test")
REDIS_URL = os.environ.get("CMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require(available: bool, what: str) -> None:
    """Skip when an optional service or tool is missing; fail instead under CMS_REQUIRE_SERVICES=1."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (CMS_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} not available")


def _postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    require(_postgres_available(), f"PostgreSQL at {POSTGRES_DSN}")
    return POSTGRES_DSN


@pytest.fixture
def postgres_schema_url(postgres_dsn: str) -> Iterator[str]:
    """A SQLAlchemy URL for a fresh, empty schema in the test database, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    base = postgres_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database for this test, flushed before and after."""
    client = redis_lib.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.ping()
        available = True
    except redis_lib.RedisError:
        available = False
    require(available, f"Redis at {REDIS_URL}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "testing",
        "database_url": database_url or f"sqlite:///{tmp_path / 'test.sqlite3'}",
        "secret_key": "test-secret-key",
        "password_hash_fast": True,
        "instance_path": tmp_path,
    }
    values.update(overrides)
    return Settings(**values)


def build_app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    with app.app_context():
        db.create_all()
    yield app
    if app.extensions["cms"].courier is not None:
        app.extensions["cms"].courier.stop()
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    # Stop the plugin ticker so the engine and its reserved sandbox pool can be freed: a test run
    # builds hundreds of apps.
    app.extensions["cms"].plugins.close()
    app.extensions["cms"].flags.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh SQLite database."""
    yield from build_app(make_settings(tmp_path))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The app on SQLite and again on PostgreSQL (for model and service tests)."""
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_schema_url")
    yield from build_app(make_settings(tmp_path, url))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@dataclass
class Personas:
    """Two agencies; an admin and an agent in A, an agent in B. All share factories.PASSWORD."""

    agency_a_id: int
    agency_b_id: int
    admin: str = "ada.admin"
    agent_a: str = "alice.agent"
    agent_b: str = "bob.agent"
    password: str = factories.PASSWORD


def create_personas(app: Flask) -> Personas:
    with app.app_context():
        agency_a = factories.make_agency(db.session, "Alpha Travel")
        agency_b = factories.make_agency(db.session, "Beta Tours")
        factories.make_user(db.session, agency_a, "ada.admin", Role.ADMIN)
        factories.make_user(db.session, agency_a, "alice.agent")
        factories.make_user(db.session, agency_b, "bob.agent")
        return Personas(agency_a.id, agency_b.id)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    """Return the CSRF token embedded in a rendered page."""
    match = _CSRF.search(html)
    assert match, "page has no csrf_token input"
    return match.group(1)


class Browser:
    """A test client that logs in through the real form and posts forms with their CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def csrf(self, page: str = "/") -> str:
        response = self.client.get(page)
        if response.status_code in (301, 302):
            response = self.client.get(response.headers["Location"])
        return csrf_from(response.get_data(as_text=True))

    def login(self, username: str, password: str = factories.PASSWORD) -> Any:
        token = csrf_from(self.client.get("/login").get_data(as_text=True))
        return self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )

    def logout(self) -> Any:
        return self.client.post("/logout", data={"csrf_token": self.csrf("/")})

    def post(self, url: str, data: dict[str, Any] | None = None, csrf_page: str = "/", **kw: Any) -> Any:
        payload = dict(data or {})
        payload["csrf_token"] = self.csrf(csrf_page)
        return self.client.post(url, data=payload, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


@pytest.fixture
def as_user(app: Flask, personas: Personas) -> Any:
    """`as_user("alice.agent")` returns a logged-in Browser for that persona."""

    def login(username: str) -> Browser:
        b = Browser(app.test_client())
        response = b.login(username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return b

    return login
