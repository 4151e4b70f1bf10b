"""Propagation between workers, with the real PostgreSQL and Redis: two FlagStores, each with its
own Redis connection and watcher, stand for two workers (of one or two app instances).

Timings are never asserted; every wait has a generous 5 s deadline (the goal is under 1 s).
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis as redis_lib
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from cms.audit import Actor
from cms.extensions import db
from cms.flags import AgentRef, FlagStore, config_version, ensure_plugin_flag, set_flag
from tests.conftest import build_app, make_settings
from tests.flags.conftest import StoreFactory

KEY = "plugin.softphone"
ALICE = AgentRef(2, 1, "agent", "alice.agent")
ADMIN = Actor.system("test-admin")
DEADLINE = 5.0


@pytest.fixture
def pg_app(tmp_path: Path, postgres_schema_url: str) -> Iterator[Flask]:
    for app in build_app(make_settings(tmp_path, postgres_schema_url)):
        with app.app_context():
            ensure_plugin_flag(db.session, "softphone", "Softphone")
            db.session.commit()
        yield app


@pytest.fixture
def engine(pg_app: Flask) -> Engine:
    with pg_app.app_context():
        return db.engine


def change(app: Flask, store: FlagStore | None, **changes: Any) -> int:
    """set_flag as an admin request on `store`'s worker would; returns the new config version."""
    with app.app_context():
        set_flag(db.session, ADMIN, KEY, reason="propagation test",
                 notify=store.changed if store else None, **changes)
        return config_version(db.session)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        time.sleep(0.005)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_change_reaches_the_other_worker_through_redis(
    pg_app: Flask, engine: Engine, redis_url: str, make_store: StoreFactory
) -> None:
    # The database poll is slowed to a minute: only Redis can deliver within the deadline.
    worker_a = make_store(engine, redis_url, poll_seconds=60)
    worker_b = make_store(engine, redis_url, poll_seconds=60)
    assert worker_a.is_enabled(KEY, ALICE) and worker_b.is_enabled(KEY, ALICE)
    wait_until(lambda: worker_b.stats()["subscribed"], "worker B subscribed")
    for enabled in (False, True, False):
        version = change(pg_app, worker_a, enabled=enabled)
        assert worker_a.is_enabled(KEY, ALICE) is enabled  # the acting worker at once
        wait_until(lambda: worker_b.version == version, f"worker B applies version {version}")
        assert worker_b.is_enabled(KEY, ALICE) is enabled
    assert redis_lib.Redis.from_url(redis_url).get("cms:flags:version") == str(version).encode()


def test_redis_paused_requests_keep_flowing_on_the_last_snapshot(
    pg_app: Flask, engine: Engine, redis_url: str, make_store: StoreFactory
) -> None:
    worker_a = make_store(engine, redis_url, poll_seconds=0.3)
    worker_b = make_store(engine, redis_url, poll_seconds=0.3)
    change(pg_app, worker_a, rollout_percent=100)
    assert worker_b.is_enabled(KEY, ALICE) is True
    wait_until(lambda: worker_b.stats()["subscribed"], "worker B subscribed")
    redis_lib.Redis.from_url(redis_url).execute_command("CLIENT", "PAUSE", 2000, "ALL")
    paused_until = time.monotonic() + 2.0
    try:
        # Requests during the pause: answered from memory, with the last values.
        answers = [worker_b.is_enabled(KEY, ALICE) for _ in range(20_000)]
        assert set(answers) == {True}
        # A change while Redis hangs: the publish gives up after the socket timeout, and the
        # database poll still brings it to the other worker.
        version = change(pg_app, worker_a, enabled=False)
        wait_until(lambda: worker_b.version == version, "worker B applies the change via the DB")
        assert worker_b.is_enabled(KEY, ALICE) is False
    finally:
        time.sleep(max(0.0, paused_until - time.monotonic()) + 0.1)
    # Redis is back: changes keep arriving.
    version = change(pg_app, worker_a, enabled=True)
    wait_until(lambda: worker_b.version == version, "worker B applies the change after the pause")
    assert worker_b.is_enabled(KEY, ALICE) is True


def test_redis_unreachable_the_worker_backs_off_and_polls_the_database(
    pg_app: Flask, engine: Engine, redis_url: str, make_store: StoreFactory
) -> None:
    worker_a = make_store(engine, redis_url, poll_seconds=0.3)
    worker_b = make_store(engine, f"redis://127.0.0.1:{closed_port()}/0", poll_seconds=0.3)
    answers = [worker_b.is_enabled(KEY, ALICE) for _ in range(5_000)]
    assert set(answers) == {True}  # its first snapshot came from the database
    version = change(pg_app, worker_a, enabled=False)
    wait_until(lambda: worker_b.version == version, "worker B applies the change via the DB")
    assert worker_b.is_enabled(KEY, ALICE) is False
    stats = worker_b.stats()
    assert stats["redis"] == "backing off"
    # Requests never touch Redis, and the watcher does not hammer it: one try per back-off.
    assert 1 <= stats["redis_errors"] <= 3, stats


def test_without_redis_workers_poll_the_database_version(
    pg_app: Flask, engine: Engine, make_store: StoreFactory
) -> None:
    worker_a = make_store(engine, poll_seconds=0.2)
    worker_b = make_store(engine, poll_seconds=0.2)
    assert worker_b.is_enabled(KEY, ALICE) is True
    version = change(pg_app, worker_a, rollout_percent=0)
    wait_until(lambda: worker_b.version == version, "worker B applies the change via the DB")
    assert worker_b.is_enabled(KEY, ALICE) is False
    assert worker_b.stats()["redis"] == "off"


def test_with_the_database_and_redis_down_the_last_snapshot_stays(
    pg_app: Flask, engine: Engine, redis_url: str, make_store: StoreFactory
) -> None:
    dead = create_engine("postgresql+psycopg://127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    current = {"engine": engine}
    worker_b = make_store(lambda: current["engine"], f"redis://127.0.0.1:{closed_port()}/0",
                          poll_seconds=0.1)
    change(pg_app, None, enabled=False)
    assert worker_b.is_enabled(KEY, ALICE) is False  # an off plugin, as read from the database
    current["engine"] = dead
    wait_until(lambda: worker_b.stats()["db_errors"] >= 2, "polls fail")
    assert worker_b.reload() is None  # a failed reload never raises...
    assert worker_b.is_enabled(KEY, ALICE) is False  # ...and the snapshot (not a default) stays
    assert worker_b.is_enabled("plugins.all", ALICE) is True
    version = change(pg_app, None, enabled=True)
    current["engine"] = engine  # the database is back
    wait_until(lambda: worker_b.version == version, "worker B catches up")
    assert worker_b.is_enabled(KEY, ALICE) is True


def _forked_worker(store: FlagStore, engine: Engine, pipe: Any) -> None:
    engine.dispose(close=False)  # as cms.lifecycle does: never share the parent's connections
    pipe.send(("started", store.is_enabled(KEY, ALICE), store.stats()["watcher_alive"]))
    pipe.recv()  # the parent has changed the flag
    deadline = time.monotonic() + DEADLINE
    while store.is_enabled(KEY, ALICE) and time.monotonic() < deadline:
        time.sleep(0.005)
    pipe.send(("after change", store.is_enabled(KEY, ALICE), store.stats()["subscribed"]))


def test_a_forked_worker_starts_its_own_watcher(
    pg_app: Flask, engine: Engine, redis_url: str, make_store: StoreFactory
) -> None:
    """Gunicorn with preload_app forks a loaded app: the child needs its own thread and
    subscription, and keeps the snapshot it inherited."""
    parent = make_store(engine, redis_url, poll_seconds=60)
    assert parent.is_enabled(KEY, ALICE) is True
    wait_until(lambda: parent.stats()["subscribed"], "the parent subscribed")
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(target=_forked_worker,
                                                        args=(parent, engine, theirs))
    child.start()
    try:
        assert ours.poll(DEADLINE) and ours.recv() == ("started", True, True)
        time.sleep(0.3)  # let the child's watcher subscribe (a missed message is caught anyway)
        change(pg_app, parent, enabled=False)
        ours.send("changed")
        assert ours.poll(DEADLINE + 2) and ours.recv() == ("after change", False, True)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
