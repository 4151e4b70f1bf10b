"""Login throttling: failure counters in Redis when configured, in-process otherwise.

Every counter lives for a window of `window_seconds` from its first failure. A key either
refuses attempts until its window ends once it reaches its limit (`ThrottleKey.max_delay_s`
None: the strict limit on one account from one address), or, past its limit, asks for a short
delay after each failure that doubles with every further failure up to `max_delay_s` (an
account from anywhere, an address for any account): a slowdown, never a lock-out. If Redis
fails, the in-process counters take over (login keeps working, and stays throttled per worker).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar

import redis

logger = logging.getLogger(__name__)

PRIMARY_RETRY_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class ThrottleKey:
    """A counter name, the failures it allows per window, and (for a growing delay instead of
    waiting out the window) the longest delay in seconds."""

    name: str
    limit: int
    max_delay_s: int | None = None

    def wait(self, count: int, window_left: int, since_last: float) -> int:
        """Seconds to wait before the next attempt, given the counter's state."""
        if count < self.limit:
            return 0
        if self.max_delay_s is None:
            return window_left
        delay = min(self.max_delay_s, 2 ** min(count - self.limit, 16))
        return max(0, math.ceil(delay - since_last))


@dataclass(frozen=True)
class KeyState:
    count: int
    wait: int
    window_left: int = 0
    since_last: float = 0.0


class CounterStore(Protocol):
    def count(self, key: str) -> tuple[int, int, float]:
        """Return (failures, seconds until the window ends, seconds since the last failure)
        for `key`."""

    def increment(self, key: str, window_seconds: int) -> None: ...

    def clear(self, key: str) -> None: ...


class MemoryCounters:
    """Thread-safe in-process counters with expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float, float]] = {}  # count, expires, last

    def count(self, key: str) -> tuple[int, int, float]:
        with self._lock:
            entry = self._counters.get(key)
            now = self._clock()
            if entry is None or entry[1] <= now:
                self._counters.pop(key, None)
                return 0, 0, 0.0
            return entry[0], math.ceil(entry[1] - now), now - entry[2]

    def increment(self, key: str, window_seconds: int) -> None:
        with self._lock:
            now = self._clock()
            if len(self._counters) > 100_000:
                self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
            count, expires, _ = self._counters.get(key, (0, now + window_seconds, now))
            if expires <= now:
                count, expires = 0, now + window_seconds
            self._counters[key] = (count + 1, expires, now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)


class RedisCounters:
    """Counters shared by every worker and host, kept in Redis with TTLs."""

    #: v2: hashes {n, last} (v1 keys were plain counters; a rolling deploy must not mix them).
    prefix = "cms:login-throttle:v2:"

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def count(self, key: str) -> tuple[int, int, float]:
        pipe = self._client.pipeline()
        pipe.hmget(self.prefix + key, "n", "last")
        pipe.ttl(self.prefix + key)
        (raw, last), ttl = pipe.execute()
        if raw is None:
            return 0, 0, 0.0
        return int(raw), max(int(ttl), 1), max(0.0, time.time() - float(last or 0))

    def increment(self, key: str, window_seconds: int) -> None:
        pipe = self._client.pipeline()
        pipe.hincrby(self.prefix + key, "n", 1)
        pipe.hset(self.prefix + key, "last", f"{time.time():.3f}")
        pipe.expire(self.prefix + key, window_seconds, nx=True)
        pipe.execute()

    def clear(self, key: str) -> None:
        self._client.delete(self.prefix + key)


class LoginThrottle:
    """Decides whether a login attempt may proceed and records failures."""

    def __init__(
        self,
        window_seconds: int,
        primary: CounterStore,
        fallback: CounterStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_seconds = window_seconds
        self._primary = primary
        self._fallback = fallback
        self._clock = clock
        self._primary_down_until = 0.0

    def _use(self, operation: Callable[[CounterStore], T]) -> T:
        """Run `operation` on Redis, or on the in-process counters while Redis is failing."""
        if self._fallback is not None and self._clock() < self._primary_down_until:
            return operation(self._fallback)
        try:
            return operation(self._primary)
        except redis.RedisError as error:
            if self._fallback is None:
                raise
            # Skip Redis for a while so each login pays the socket timeout at most once per pause.
            self._primary_down_until = self._clock() + PRIMARY_RETRY_SECONDS
            logger.warning("login throttle: Redis unavailable (%s); using in-process counters", error)
            return operation(self._fallback)

    def check(self, keys: list[ThrottleKey]) -> dict[str, KeyState]:
        """Each key's failures and the seconds it asks to wait (0: go ahead)."""
        found = {}
        for key in keys:
            count, left, since = self._use(lambda store: store.count(key.name))
            found[key.name] = KeyState(count, key.wait(count, left, since), left, since)
        return found

    def retry_after(self, keys: list[ThrottleKey]) -> int:
        """Return seconds to wait if any key asks for it, else 0."""
        return max((state.wait for state in self.check(keys).values()), default=0)

    def record_failure(self, keys: list[ThrottleKey]) -> None:
        for key in keys:
            self._use(lambda store: store.increment(key.name, self.window_seconds))

    def clear(self, key: ThrottleKey) -> None:
        self._use(lambda store: store.clear(key.name))


def make_throttle(client: redis.Redis | None, window_seconds: int) -> LoginThrottle:
    """Return a Redis-backed throttle when `client` is given, else an in-process one."""
    memory = MemoryCounters()
    if client is None:
        return LoginThrottle(window_seconds, memory)
    return LoginThrottle(window_seconds, RedisCounters(client), fallback=memory)
