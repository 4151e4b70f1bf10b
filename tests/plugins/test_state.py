"""The per-worker plugin snapshot: which version an agent gets, read from memory, and how a
quarantine or promotion reaches every worker with the flags' config-version signal."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from flask import Flask

from cms.audit import Actor
from cms.extensions import db
from cms.flags import FlagStore, SqlFlagSource
from cms.plugins import lifecycle
from cms.plugins.state import (InstallState, PluginState, VersionState, cohort, load_plugin_state,
                               plugin_state_of)
from cms.redis_client import make_redis
from tests.plugins.conftest import make_plugin_app, probe_plugin
from tests.plugins.test_lifecycle import KEY, package, upload

ADMIN = Actor(None, "ada.admin", None)


def state_with(*versions: VersionState, **install: object) -> tuple[PluginState, InstallState]:
    spec = InstallState(**{"plugin_id": "p", "enabled": True, "version": "1.0", **install})  # type: ignore[arg-type]
    return PluginState.of([spec], versions), spec


def test_the_canary_cohort_gets_the_canary_and_a_quarantine_falls_back() -> None:
    one, two = VersionState("p", "1.0", "a"), VersionState("p", "2.0", "b")
    states, install = state_with(one, two, canary_version="2.0", canary_percent=30,
                                 previous_version=None)
    served = {uid: states.serving(install, uid) for uid in range(1, 1001)}
    canary = [uid for uid, v in served.items() if v == two]
    assert canary == [uid for uid in served if cohort("p", uid) < 30]
    assert 0.25 < len(canary) / 1000 < 0.35
    # The canary quarantined: its cohort is back on the current version.
    bad = VersionState("p", "2.0", "b", quarantined=True, quarantine_reason="leak")
    states, install = state_with(one, bad, canary_version="2.0", canary_percent=30)
    assert {states.serving(install, uid) for uid in range(1, 200)} == {one}
    # Current and previous quarantined: nothing is served (the plugin is off for agents).
    states, install = state_with(VersionState("p", "1.0", "a", quarantined=True),
                                 VersionState("p", "0.9", "c", quarantined=True),
                                 previous_version="0.9")
    assert states.serving(install, 1) is None
    states, install = state_with(VersionState("p", "1.0", "a", quarantined=True),
                                 VersionState("p", "0.9", "c"), previous_version="0.9")
    assert states.serving(install, 1) == VersionState("p", "0.9", "c")


@pytest.fixture
def pg_app(tmp_path: Path, probe_wasm: bytes, postgres_schema_url: str) -> Iterator[Flask]:
    yield from make_plugin_app(tmp_path, probe_wasm, postgres_schema_url)


def test_the_snapshot_reads_installs_and_their_versions_without_modules(pg_app: Flask,
                                                                         probe_wasm: bytes) -> None:
    with pg_app.app_context():
        states = load_plugin_state(db.session.connection())
    install = states.installs["probe"]
    assert install.enabled and install.version == "1.0.0"
    assert "kv" in install.granted
    version = states.serving(install, 1)
    assert version is not None and version.sha256 == probe_plugin(probe_wasm).manifest.module_sha256


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = 5.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {deadline_s} s: {what}"
        time.sleep(0.005)


def test_a_quarantine_and_a_promotion_reach_another_worker_through_redis(
        pg_app: Flask, probe_wasm: bytes, redis_url: str) -> None:
    with pg_app.app_context():
        lifecycle.add_trusted_key(db.session, ADMIN, KEY[1], "Probe authors")
        engine = db.engine
    source = SqlFlagSource(lambda: engine, {"plugins": load_plugin_state})
    # Two workers; the database poll slowed to a minute, so only Redis delivers in time.
    worker_a = FlagStore(source, make_redis(redis_url, 0.25), poll_seconds=60)
    worker_b = FlagStore(source, make_redis(redis_url, 0.25), poll_seconds=60)
    try:
        def served_by_b() -> str | None:
            snapshot = worker_b.snapshot()
            states = plugin_state_of(snapshot.extras if snapshot else None)
            assert states is not None
            version = states.serving(states.installs["probe"], 7)
            return None if version is None else version.version

        assert served_by_b() == "1.0.0" and worker_a.snapshot() is not None
        wait_until(lambda: worker_b.stats()["subscribed"], "worker B subscribed")
        upload(pg_app, package(probe_wasm, "1.1.0"))
        with pg_app.app_context():
            lifecycle.promote(db.session, ADMIN, "probe", "1.1.0", lifecycle.Release("ship it"),
                              notify=worker_a.changed)
        wait_until(lambda: served_by_b() == "1.1.0", "worker B serves the promoted version")
        with pg_app.app_context():
            lifecycle.quarantine(db.session, ADMIN, "probe", "1.1.0", "leaks",
                                 notify=worker_a.changed)
        wait_until(lambda: served_by_b() == "1.0.0", "worker B falls back after the quarantine")
    finally:
        worker_a.close()
        worker_b.close()
