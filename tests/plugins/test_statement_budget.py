"""What plugins cost a page, in SQL statements: with the three bundled plugins on, the dashboard
and the client page issue at most 2 more statements than with `plugins.all` off (on SQLite and
PostgreSQL). A panel that only reads opens no SAVEPOINT and commits nothing; a plugin action that
writes opens one, and never expires the page's loaded objects."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import event, inspect

from cms.app_state import state
from cms.audit import Actor
from cms.extensions import db
from cms.flags import set_flag
from cms.models import Agency, Client, User
from tests import factories
from tests.conftest import Browser, Personas, create_personas
from tests.plugins.test_bundled_http import bundled_app

EXTRA_ALLOWED = 2
BUNDLED = ("mail", "softphone", "terminal")


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    url = request.getfixturevalue("postgres_schema_url") if request.param == "postgresql" else None
    yield from bundled_app(tmp_path, database_url=url)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL this thread sends while the block runs (the flag watcher's own are not counted)."""
    seen: list[str] = []
    me = threading.get_ident()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.get_ident() == me:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def busy_client(app: Flask, agency_id: int) -> int:
    """A client with bookings and timeline entries, so an N+1 shows up as many statements."""
    with app.app_context():
        agency = db.session.get(Agency, agency_id)
        user = db.session.scalar(db.select(User).where(User.username == "alice.agent"))
        client = factories.make_client(db.session, agency, first_name="Ada", last_name="Lovelace")
        for n in range(6):
            factories.make_booking(db.session, client, user,
                                   departure=date.today() + timedelta(days=5 + n))
        db.session.commit()
        return client.id


def set_all_plugins(app: Flask, on: bool) -> None:
    with app.app_context():
        set_flag(db.session, Actor(None, "ada.admin", None), "plugins.all", enabled=on,
                 reason="statement budget test", notify=state().flags.changed)


def measure(app: Flask, browser: Browser, url: str) -> tuple[int, str, list[str]]:
    """Statements of one GET of `url` after a warm-up GET (module loads, first snapshots)."""
    assert browser.get(url).status_code == 200
    with statements(app) as seen:
        response = browser.get(url)
    assert response.status_code == 200
    return len(seen), response.get_data(as_text=True), seen


@pytest.mark.parametrize("page", ["dashboard", "client"])
def test_plugins_cost_a_page_at_most_two_statements(app: Flask, personas: Personas, page: str) -> None:
    client_id = busy_client(app, personas.agency_a_id)
    url = "/" if page == "dashboard" else f"/clients/{client_id}"
    browser = Browser(app.test_client())
    browser.login(personas.agent_a)
    on, html_on, sql_on = measure(app, browser, url)
    # The plugins really rendered: their panels (client page) or status strip (both).
    for plugin_id in BUNDLED:
        assert f'data-plugin-status="{plugin_id}" data-state=' in html_on
    if page == "client":
        # The softphone's toolbar and the three sidebar panels.
        assert html_on.count('class="plugin-panel"') == 4, "every panel renders inline"
        assert "data-fault=" not in html_on
    set_all_plugins(app, False)
    off, html_off, sql_off = measure(app, browser, url)
    assert 'class="plugin-panel' not in html_off and 'data-plugin-status=' not in html_off
    assert on - off <= EXTRA_ALLOWED, (
        f"{page}: {on} statements with plugins on, {off} with plugins.all off:\n"
        + "\n".join(s for s in sql_on if s not in sql_off))
    # Reads make no transaction work: no savepoint, no commit.
    assert not [s for s in sql_on if "SAVEPOINT" in s.upper() or s.strip().upper() == "COMMIT"]


def test_a_writing_action_opens_a_savepoint_and_keeps_the_page_objects_loaded(
        app: Flask, personas: Personas) -> None:
    from cms.plugins.service import AgentCall, run_action

    client_id = busy_client(app, personas.agency_a_id)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.username == "alice.agent"))
        client = db.session.get(Client, client_id)
        assert client is not None and user is not None
        call = AgentCall.for_user(user, Actor.for_user(user, None, None), client_id=client_id)
        with statements(app) as read_sql:
            outcome = run_action(db.session, state().plugins, call, "softphone", "client_panel", {})
        assert outcome.ok
        assert not [s for s in read_sql if "SAVEPOINT" in s.upper()]
        with statements(app) as write_sql:
            outcome = run_action(db.session, state().plugins, call, "softphone", "dial",
                                 {"number": "+44 20 7946 0001", "client_id": client_id})
        assert outcome.ok, outcome.output
        assert sum("SAVEPOINT" in s.upper() for s in write_sql) >= 1
        # The call's writes were committed, but the page's client is still loaded.
        assert not inspect(client).expired_attributes
        with statements(app) as after:
            assert client.full_name == "Ada Lovelace"
        assert after == []
