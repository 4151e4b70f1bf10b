"""Evaluation from a snapshot: on/off, sticky rollout, targeting, and the fail rules."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine

from cms.audit import Actor
from cms.extensions import db
from cms.flags import (FLAGS, AgentRef, FlagRule, Snapshot, bucket, ensure_plugin_flag, fallback,
                       set_flag)
from tests.flags.conftest import StoreFactory

IDS = range(1, 10_001)


def agent(user_id: int, agency_id: int = 1, role: str = "agent", username: str | None = None) -> AgentRef:
    return AgentRef(user_id, agency_id, role, username)


def rule(key: str = "plugin.softphone", enabled: bool = True, percent: int = 100,
         **targeting: Any) -> FlagRule:
    return FlagRule.from_row(key, enabled, percent, targeting)


def on_for(flag: FlagRule) -> set[int]:
    return {i for i in IDS if flag.evaluate(agent(i))}


def test_a_disabled_flag_is_off_for_everyone_whatever_the_rollout() -> None:
    flag = rule(enabled=False, percent=100, roles=["agent", "admin"])
    assert on_for(flag) == set()
    assert flag.evaluate(None) is False


@pytest.mark.parametrize("percent", [0, 1, 10, 25, 50, 90, 100])
def test_rollout_reaches_about_the_percentage_of_10k_agents(percent: int) -> None:
    count = len(on_for(rule(percent=percent)))
    if percent in (0, 100):
        assert count == percent * 100
    else:
        assert abs(count - percent * 100) <= 250, count  # 2.5 points over 10,000 agents


def test_rollout_is_sticky_and_raising_it_only_adds_agents() -> None:
    assert on_for(rule(percent=30)) == on_for(rule(percent=30))
    assert on_for(rule(percent=10)) < on_for(rule(percent=30)) < on_for(rule(percent=60))
    assert all(bucket("plugin.softphone", 4242) == bucket("plugin.softphone", 4242) for _ in range(3))


def test_each_flag_draws_its_own_cohort() -> None:
    mail, phone = on_for(rule("plugin.mail", percent=50)), on_for(rule("plugin.softphone", percent=50))
    assert abs(len(mail & phone) - 2_500) <= 250  # independent: about a quarter are in both


def test_targeting_by_user_id_username_agency_or_role() -> None:
    flag = rule(agents=["7", "alice.agent"], agencies=[3], roles=["admin"])
    assert flag.evaluate(agent(7))
    assert flag.evaluate(agent(8, username="alice.agent"))
    assert flag.evaluate(agent(9, agency_id=3))
    assert flag.evaluate(agent(10, role="admin"))
    assert not flag.evaluate(agent(11, agency_id=2, username="bob.agent"))


def test_rollout_applies_among_the_targeted_agents_only() -> None:
    flag = rule(percent=50, agencies=[3])
    in_agency = {i for i in IDS if flag.evaluate(agent(i, agency_id=3))}
    assert abs(len(in_agency) - 5_000) <= 250
    assert in_agency == {i for i in IDS if bucket(flag.key, i) < 50}
    assert not any(flag.evaluate(agent(i, agency_id=4)) for i in IDS)


def test_without_an_agent_only_a_flag_on_for_everyone_is_on() -> None:
    assert rule().evaluate(None) is True
    assert rule(percent=99).evaluate(None) is False
    assert rule(roles=["agent"]).evaluate(None) is False


def test_unknown_flags_plugins_fail_closed_and_core_features_fail_open() -> None:
    snapshot = Snapshot(3, {})
    alice = agent(2)
    assert snapshot.is_enabled("plugin.softphone", alice) is False
    assert snapshot.is_enabled("plugin.softphone", alice, default=True) is False
    assert snapshot.is_enabled("search.instant", alice) is True
    assert snapshot.is_enabled("search.instant", alice, default=False) is False
    declared = next(iter(FLAGS.values()))
    assert snapshot.is_enabled(declared.key, alice) is declared.default
    assert fallback("plugin.anything") is False and fallback("reports.beta") is True


def test_a_worker_without_a_snapshot_reads_the_database(app: Flask, make_store: StoreFactory) -> None:
    with app.app_context():
        ensure_plugin_flag(db.session, "softphone", "Softphone")
        db.session.commit()
        set_flag(db.session, Actor.system(), "plugins.all", enabled=False, reason="outage drill")
        store = make_store(db.engine)
    assert store.version is None
    assert store.is_enabled("plugin.softphone", agent(2)) is True
    assert store.is_enabled("plugins.all", agent(2)) is False
    assert store.version == 2


def test_when_flags_cannot_be_read_plugins_are_off_and_core_features_on(
    make_store: StoreFactory,
) -> None:
    # A real connection refused: nothing listens on port 1.
    dead = create_engine("postgresql+psycopg://127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    store = make_store(dead)
    alice = agent(2)
    for _ in range(200):
        assert store.is_enabled("plugin.softphone", alice) is False
        assert store.is_enabled("plugins.all", alice) is True
        assert store.is_enabled("search.instant", alice, default=False) is False
    assert store.snapshot() is None and store.reload() is None
    # A worker with no snapshot retries the database at most once a second, not per request.
    assert store.stats()["db_errors"] <= 4
