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


@pytest.fixture
def throttled_app(tmp_path: Path) -> Iterator[Flask]:
    settings = make_settings(
        tmp_path, login_max_failures_per_account=3, login_max_failures_per_ip=5
    )
    yield from build_app(settings)


def _fail(browser: Browser, username: str, times: int) -> list[int]:
    return [browser.login(username, "wrong-password-1").status_code for _ in range(times)]


def test_account_is_throttled_after_limit_with_clear_message(throttled_app: Flask) -> None:
    personas = create_personas(throttled_app)
    browser = Browser(throttled_app.test_client())
    assert _fail(browser, personas.agent_a, 3) == [401, 401, 401]
    response = browser.login(personas.agent_a)  # even the right password is refused now
    assert response.status_code == 429
    assert "Too many failed login attempts. Try again in 15 minutes." in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    with throttled_app.app_context():
        throttled = db.session.scalar(
            select(func.count()).where(AuditEvent.action == "auth.login.throttled")
        )
    assert throttled == 1


def test_other_accounts_unaffected_until_ip_limit(throttled_app: Flask) -> None:
    personas = create_personas(throttled_app)
    browser = Browser(throttled_app.test_client())
    _fail(browser, personas.agent_a, 3)
    assert browser.login(personas.agent_b).status_code == 302
    # Two more failures from this IP on other names reach the per-IP limit of 5.
    _fail(Browser(throttled_app.test_client()), "someone.else", 2)
    assert Browser(throttled_app.test_client()).login(personas.admin).status_code == 429


def test_successful_login_resets_account_counter(throttled_app: Flask) -> None:
    personas = create_personas(throttled_app)
    browser = Browser(throttled_app.test_client())
    _fail(browser, personas.agent_a, 2)
    assert browser.login(personas.agent_a).status_code == 302
    other = Browser(throttled_app.test_client())
    assert _fail(other, personas.agent_a, 2) == [401, 401]
    assert other.login(personas.agent_a).status_code == 302


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
    assert b"cms:login-throttle:account:alice.agent" in keys
    with pytest.raises(StopIteration):
        next(first)


@pytest.mark.redis
def test_redis_counter_expires_with_ttl(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    throttle = LoginThrottle(2, RedisCounters(client))
    key = [ThrottleKey("account:ttl", 1)]
    throttle.record_failure(key)
    assert 1 <= throttle.retry_after(key) <= 2
    assert 1 <= client.ttl("cms:login-throttle:account:ttl") <= 2


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
