"""Login throttling per account and per IP, in-process and on a real Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

from cms.auth.throttle import LoginThrottle, MemoryCounters, RedisCounters, ThrottleKey, make_throttle
from cms.extensions import db
from cms.redis_client import make_redis
from cms.models import AuditEvent
from tests.conftest import Browser, Personas, build_app, create_personas, make_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_counters_block_at_limit_and_expire() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(60, MemoryCounters(clock))
    key = [ThrottleKey("account:x", 3)]
    for _ in range(3):
        assert throttle.retry_after(key) == 0
        throttle.record_failure(key)
    assert throttle.retry_after(key) == 60
    clock.now += 59.5
    assert throttle.retry_after(key) == 1
    clock.now += 1
    assert throttle.retry_after(key) == 0


def test_clear_resets_only_that_key() -> None:
    throttle = LoginThrottle(60, MemoryCounters(FakeClock()))
    account, ip = ThrottleKey("account:x", 1), ThrottleKey("ip:1.2.3.4", 1)
    throttle.record_failure([account, ip])
    throttle.clear(account)
    assert throttle.retry_after([account]) == 0
    assert throttle.retry_after([ip]) == 60


def test_a_growing_delay_doubles_with_each_failure_and_never_locks_out() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(900, MemoryCounters(clock))
    key = [ThrottleKey("account:x", 3, max_delay_s=8)]
    waits = []
    for _ in range(7):
        throttle.record_failure(key)
        waits.append(throttle.retry_after(key))
    assert waits == [0, 0, 1, 2, 4, 8, 8]  # past the limit: 1, 2, 4 s ... up to the cap
    clock.now += 8
    assert throttle.retry_after(key) == 0  # the delay has passed: one more try


@pytest.fixture
def throttled_app(tmp_path: Path) -> Iterator[Flask]:
    settings = make_settings(
        tmp_path, login_max_failures_per_account=3, login_max_failures_per_ip=5,
        login_account_delay_after=4, login_max_delay_seconds=30,
    )
    yield from build_app(settings)


def _from(app: Flask, address: str) -> Browser:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Browser(client)


def _fail(browser: Browser, username: str, times: int) -> list[int]:
    return [browser.login(username, "wrong-password-1").status_code for _ in range(times)]


def test_one_account_from_one_address_is_throttled_strictly(throttled_app: Flask) -> None:
    personas = create_personas(throttled_app)
    browser = _from(throttled_app, "10.0.0.1")
    assert _fail(browser, personas.agent_a, 3) == [401, 401, 401]
    response = browser.login(personas.agent_a)  # even the right password, from this address
    assert response.status_code == 429
    assert "Too many failed login attempts. Try again in 15 minutes." in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    with throttled_app.app_context():
        throttled = db.session.scalar(
            select(func.count()).where(AuditEvent.action == "auth.login.throttled")
        )
    assert throttled == 1


def test_an_attacker_cannot_lock_an_agent_out(throttled_app: Flask) -> None:
    """Failures on alice's account from other addresses (an attacker, or a script with an old
    password) never stop alice's correct password from her own address."""
    personas = create_personas(throttled_app)
    for n in range(8):  # 8 failures from 8 addresses: past the account's delay threshold of 4
        assert _fail(_from(throttled_app, f"203.0.113.{n}"), personas.agent_a, 1) == [401]
    # The attacker's next attempt from an address that failed waits a few seconds, no more.
    slowed = _from(throttled_app, "203.0.113.0").login(personas.agent_a, "wrong-password-1")
    assert slowed.status_code == 429
    wait = int(slowed.headers["Retry-After"])
    assert 1 <= wait <= 30
    assert f"Try again in {wait} second" in slowed.get_data(as_text=True)
    # Alice, from an address with no recent failures, logs in.
    assert _from(throttled_app, "198.51.100.7").login(personas.agent_a).status_code == 302


def test_an_agent_who_mistyped_once_waits_seconds_not_the_window(tmp_path: Path) -> None:
    import time

    app = next(build_app(make_settings(tmp_path, login_account_delay_after=4,
                                       login_max_delay_seconds=2)))
    personas = create_personas(app)
    home = "198.51.100.9"
    assert _fail(_from(app, home), personas.agent_a, 1) == [401]
    for n in range(8):  # meanwhile an attacker keeps the account past its delay threshold
        _fail(_from(app, f"203.0.113.{n}"), personas.agent_a, 1)
    slowed = _from(app, home).login(personas.agent_a)
    assert slowed.status_code == 429  # her address failed: the account's delay applies...
    wait = int(slowed.headers["Retry-After"])
    assert 1 <= wait <= 2  # ...but only the longest delay, counted from her own failure
    time.sleep(wait)
    assert _from(app, home).login(personas.agent_a).status_code == 302


def test_one_address_spraying_accounts_is_slowed_not_blocked(throttled_app: Flask) -> None:
    personas = create_personas(throttled_app)
    office = "192.0.2.10"  # one NAT address for a whole office
    for name in ("x1", "x2", "x3", "x4", "x5"):
        _fail(_from(throttled_app, office), name, 1)
    refused = _from(throttled_app, office).login(personas.agent_b)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) <= 30
    # Other addresses are untouched, and the office gets in again once the delay has passed.
    assert _from(throttled_app, "192.0.2.11").login(personas.admin).status_code == 302


def test_successful_login_resets_that_address_only(throttled_app: Flask) -> None:
    personas = create_personas(throttled_app)
    browser = _from(throttled_app, "10.0.0.5")
    _fail(browser, personas.agent_a, 2)
    assert browser.login(personas.agent_a).status_code == 302
    again = _from(throttled_app, "10.0.0.5")
    # The pair starts from zero again: two more failures would have reached its limit of 3.
    assert _fail(again, personas.agent_a, 1) == [401]
    assert again.login(personas.agent_a).status_code == 302


@pytest.mark.redis
def test_redis_counters_are_shared_between_app_instances(tmp_path: Path, redis_url: str) -> None:
    """Two apps (as two hosts) share the same Redis: failures on one throttle the other."""
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    settings = make_settings(
        tmp_path, database, redis_url=redis_url, login_max_failures_per_account=2
    )
    first = build_app(settings)
    app_one = next(first)
    personas = create_personas(app_one)
    from cms import create_app

    app_two = create_app(settings)
    _fail(Browser(app_one.test_client()), personas.agent_a, 2)
    assert Browser(app_two.test_client()).login(personas.agent_a).status_code == 429
    keys = redis.Redis.from_url(redis_url).keys("cms:login-throttle:*")
    assert b"cms:login-throttle:v2:pair:alice.agent|127.0.0.1" in keys
    assert b"cms:login-throttle:v2:account:alice.agent" in keys
    with pytest.raises(StopIteration):
        next(first)


@pytest.mark.redis
def test_redis_counter_expires_with_ttl(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    throttle = LoginThrottle(2, RedisCounters(client))
    key = [ThrottleKey("account:ttl", 1)]
    throttle.record_failure(key)
    assert 1 <= throttle.retry_after(key) <= 2
    assert 1 <= client.ttl("cms:login-throttle:v2:account:ttl") <= 2


def test_unreachable_redis_falls_back_to_memory() -> None:
    """Redis down: login keeps working and is still throttled in-process."""
    dead = make_redis("redis://127.0.0.1:1/0", socket_timeout=0.2)
    throttle = make_throttle(dead, 60)
    key = [ThrottleKey("account:x", 2)]
    throttle.record_failure(key)
    throttle.record_failure(key)
    assert 59 <= throttle.retry_after(key) <= 60


def test_login_works_while_redis_is_down(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0")
    app = next(build_app(settings))
    personas: Personas = create_personas(app)
    browser = Browser(app.test_client())
    assert browser.login(personas.agent_a, "wrong-password-1").status_code == 401
    assert browser.login(personas.agent_a).status_code == 302


class BrokenStore:
    """A primary store that always fails, counting how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *args: object) -> None:
        self.calls += 1
        raise redis.ConnectionError("down")

    count = increment = clear = _fail  # type: ignore[assignment]


def test_broken_redis_is_skipped_for_a_while_then_retried() -> None:
    clock = FakeClock()
    broken = BrokenStore()
    throttle = LoginThrottle(60, broken, MemoryCounters(clock), clock=clock)  # type: ignore[arg-type]
    key = [ThrottleKey("account:x", 5)]
    for _ in range(4):
        throttle.record_failure(key)
    assert broken.calls == 1  # only the first call paid for the broken connection
    clock.now += 6
    throttle.retry_after(key)
    assert broken.calls == 2
