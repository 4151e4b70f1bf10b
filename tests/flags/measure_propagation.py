"""Measure how long a flag change takes to reach another worker (not a test: run it by hand).

Worker A (this process) changes a flag with set_flag, which commits and publishes; worker B (a
separate process with its own FlagStore, Redis connection and watcher) reports the moment its
snapshot has the new version. Times are from the start of set_flag to B applying it.

    .venv/bin/python -m tests.flags.measure_propagation --changes 50
    .venv/bin/python -m tests.flags.measure_propagation --changes 10 --no-redis   # DB poll only

Uses CMS_TEST_POSTGRES_URL (a throwaway schema) and CMS_TEST_REDIS_URL, like the tests.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import time
import uuid
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from cms.audit import Actor
from cms.extensions import db
from cms.flags import AgentRef, FlagStore, SqlFlagSource, ensure_plugin_flag, set_flag
from cms.redis_client import make_redis

POSTGRES_DSN = os.environ.get("CMS_TEST_POSTGRES_URL", "postgresql://127.0.0.1/test")
REDIS_URL = os.environ.get("CMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
KEY = "plugin.softphone"


def _store(url: str, redis_url: str | None) -> FlagStore:
    engine = create_engine(url)
    return FlagStore(SqlFlagSource(lambda: engine), make_redis(redis_url, 0.25))


def _worker_b(url: str, redis_url: str | None, pipe: Any) -> None:
    store = _store(url, redis_url)
    store.is_enabled(KEY, AgentRef(1, 1, "agent"))
    deadline = time.monotonic() + 10
    while redis_url and not store.stats()["subscribed"] and time.monotonic() < deadline:
        time.sleep(0.01)
    pipe.send(("ready", store.version))
    seen = store.version
    while not pipe.poll():
        version = store.version
        if version != seen:
            pipe.send(("applied", version, time.perf_counter()))
            seen = version
        time.sleep(0.0002)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--no-redis", action="store_true", help="measure the database poll alone")
    args = parser.parse_args()
    redis_url = None if args.no_redis else REDIS_URL

    schema = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = POSTGRES_DSN.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}"
    try:
        engine = create_engine(url)
        db.metadata.create_all(engine)
        with Session(engine) as session:
            ensure_plugin_flag(session, "softphone", "Softphone")
            session.commit()
        worker_a = _store(url, redis_url)
        worker_a.is_enabled(KEY, None)
        ours, theirs = multiprocessing.get_context("spawn").Pipe()
        child = multiprocessing.get_context("spawn").Process(target=_worker_b, args=(url, redis_url, theirs))
        child.start()
        assert ours.recv()[0] == "ready"
        latencies = []
        actor = Actor.system("measure")
        with Session(engine) as session:
            for n in range(args.changes):
                started = time.perf_counter()
                set_flag(session, actor, KEY, rollout_percent=n % 100, enabled=True,
                         reason=f"measurement {n}", notify=worker_a.changed)
                while True:
                    kind, version, applied = ours.recv()
                    if version == worker_a.version:
                        break
                latencies.append((applied - started) * 1000)
                # Without Redis, start changes at random points of B's 2 s poll cycle.
                time.sleep(random.uniform(0, 2.0) if args.no_redis else 0.05)
        ours.send("stop")
        child.join(timeout=10)
        worker_a.close()
        engine.dispose()
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"{len(ordered)} changes via {'Redis' if redis_url else 'the database poll'}: "
          f"median {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms, "
          f"min {ordered[0]:.1f} ms")


if __name__ == "__main__":
    main()
