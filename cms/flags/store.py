"""The per-worker flag snapshot, and how it follows the database.

Requests evaluate flags from the snapshot in memory and never wait on Redis. A daemon watcher
thread per worker keeps it current:

- with Redis: it listens on the `cms:flags` channel (a message names the new config version),
  reads the `cms:flags:version` key every second in case a message was lost, and backs off for
  `redis_backoff_seconds` after any Redis error (timeouts are the client's short socket timeout);
- always: it compares the database's config version every `poll_seconds` (2 s), so changes
  arrive even while Redis is down or when a writer did not publish (e.g. `ensure_plugin_flag`).

A reload reads the database; when that fails the last snapshot stays. A worker without any
snapshot reads the database on first use (at most once a second); until one succeeds, plugin
flags are off and core flags are their defaults (`registry.fallback`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from types import MappingProxyType
from typing import Any, Callable, Mapping, Protocol

import redis
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from cms.flags.evaluation import AgentRef, FlagRule, Snapshot
from cms.flags.registry import fallback
from cms.models import FeatureFlag, FlagVersion

logger = logging.getLogger(__name__)

CHANNEL = "cms:flags"
VERSION_KEY = "cms:flags:version"
POLL_SECONDS = 2.0
REDIS_CHECK_SECONDS = 1.0
REDIS_BACKOFF_SECONDS = 5.0
FIRST_LOAD_RETRY_SECONDS = 1.0
LOG_EVERY_SECONDS = 60.0


class FlagSource(Protocol):
    """Where snapshots come from (the database)."""

    def load(self) -> Snapshot: ...

    def version(self) -> int: ...


#: Loads another area's rarely changing state in the flag reload's connection (see `extras`).
ExtraLoader = Callable[[Connection], Any]


class SqlFlagSource:
    """Reads flags with its own short connection from `engine()`, never the request's session.

    `extras` maps a name to a loader that runs in the same connection after the flags, so the
    snapshot's `extras[name]` is at the same config version (the plugin state uses this)."""

    def __init__(self, engine: Callable[[], Engine],
                 extras: Mapping[str, ExtraLoader] | None = None) -> None:
        self._engine = engine
        self._extras = dict(extras or {})

    def version(self) -> int:
        with self._engine().connect() as conn:
            return int(conn.scalar(select(FlagVersion.version).where(FlagVersion.id == 1)) or 0)

    def load(self) -> Snapshot:
        """All flags at one version. The version is read first: rows newer than it only cause one
        extra reload later, while rows older than it would hide a change until the next one."""
        table = FeatureFlag.__table__
        with self._engine().connect() as conn:
            version = int(conn.scalar(select(FlagVersion.version).where(FlagVersion.id == 1)) or 0)
            rows = conn.execute(
                select(table.c.key, table.c.enabled, table.c.rollout_percent, table.c.targeting)
            ).all()
            extras = {name: load(conn) for name, load in self._extras.items()}
        rules = {row.key: FlagRule.from_row(row.key, row.enabled, row.rollout_percent, row.targeting)
                 for row in rows}
        return Snapshot(version, MappingProxyType(rules), MappingProxyType(extras))


class _RateLimitedLog:
    """Logs a recurring failure once, then at most once a minute with a count."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self._last = -LOG_EVERY_SECONDS

    def __call__(self, error: BaseException) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last >= LOG_EVERY_SECONDS:
            self._last = now
            logger.warning("flags: %s failed (%d so far): %s: %s", self.what, self.count,
                           type(error).__name__, error)


class FlagStore:
    """One worker's flags: `is_enabled` answers from memory; the watcher keeps it current."""

    def __init__(
        self,
        source: FlagSource,
        redis_client: redis.Redis | None = None,
        *,
        poll_seconds: float = POLL_SECONDS,
        redis_check_seconds: float = REDIS_CHECK_SECONDS,
        redis_backoff_seconds: float = REDIS_BACKOFF_SECONDS,
        first_load_retry_seconds: float = FIRST_LOAD_RETRY_SECONDS,
    ) -> None:
        self._source = source
        self._redis = redis_client
        self.poll_seconds = poll_seconds
        self.redis_check_seconds = redis_check_seconds
        self.redis_backoff_seconds = redis_backoff_seconds
        self.first_load_retry_seconds = first_load_retry_seconds
        self._snapshot: Snapshot | None = None
        self._applied_at: float | None = None
        self._reloads = 0
        self._redis_down_until = 0.0
        self._last_first_load = -first_load_retry_seconds
        self._redis_errors = _RateLimitedLog("Redis")
        self._db_errors = _RateLimitedLog("reading flags from the database")
        self._closed = False
        self._inherited: list[Any] = []
        self._init_process_state()

    def _init_process_state(self) -> None:
        """Locks, thread and subscription belong to one process: a forked child starts afresh."""
        self._pid = os.getpid()
        self._reload_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._pubsub: Any = None  # only the watcher thread touches it
        self._next_db_check = 0.0
        self._last_key_check = 0.0

    # Requests ---------------------------------------------------------------------------------

    def is_enabled(self, key: str, agent: AgentRef | None, default: bool | None = None) -> bool:
        """The flag's answer for `agent` from the snapshot; never raises, never waits on Redis.
        `default` is a core flag's answer when it is unknown or flags cannot be read."""
        snapshot = self.snapshot()
        if snapshot is None:
            return fallback(key, default)
        return snapshot.is_enabled(key, agent, default)

    def snapshot(self) -> Snapshot | None:
        """The current snapshot, reading the database first if this worker has none (None when
        that fails). Starts the watcher if it is not running in this process."""
        self._ensure_watcher()
        snapshot = self._snapshot
        if snapshot is None:
            now = time.monotonic()
            if now - self._last_first_load >= self.first_load_retry_seconds:
                self._last_first_load = now
                snapshot = self.reload()
        return snapshot

    @property
    def version(self) -> int | None:
        """The config version of the snapshot in use (None: no snapshot yet)."""
        snapshot = self._snapshot
        return None if snapshot is None else snapshot.version

    def changed(self, version: int) -> None:
        """Call after committing a change: publish `version` and apply it in this worker now."""
        self.publish(version)
        self.reload()

    def publish(self, version: int) -> bool:
        """Tell every worker that `version` is current (SET + PUBLISH); False when Redis is off,
        backing off, or failing. Never raises, never waits longer than the socket timeout."""
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return False
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(VERSION_KEY, version)
            pipe.publish(CHANNEL, version)
            pipe.execute()
        except (redis.RedisError, OSError) as error:
            self._redis_failed(error)
            return False
        return True

    def reload(self) -> Snapshot | None:
        """Read every flag from the database now; on failure keep the last snapshot (returns
        None). Never raises."""
        with self._reload_lock:
            try:
                snapshot = self._source.load()
            except Exception as error:  # any driver or network error: keep what we have
                self._db_errors(error)
                return None
            self._snapshot = snapshot
            self._applied_at = time.time()
            self._reloads += 1
            return snapshot

    def stats(self) -> dict[str, Any]:
        """How this worker's flags are doing, for health pages and tests."""
        redis_state = "off" if self._redis is None else (
            "backing off" if time.monotonic() < self._redis_down_until else "ok")
        return {
            "version": self.version,
            "applied_at": self._applied_at,
            "reloads": self._reloads,
            "redis": redis_state,
            "redis_errors": self._redis_errors.count,
            "db_errors": self._db_errors.count,
            "subscribed": self._pubsub is not None,
            "watcher_alive": self._watcher is not None and self._watcher.is_alive(),
        }

    # The watcher ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start this process's watcher thread (idempotent; call after fork in every worker)."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._start_lock:
            if self._closed or (self._watcher is not None and self._watcher.is_alive()):
                return
            self._stop = threading.Event()
            self._watcher = threading.Thread(
                target=_watch, args=(weakref.ref(self), self._stop), name="cms-flags-watcher",
                daemon=True,
            )
            self._watcher.start()

    def _after_fork(self) -> None:
        """In a forked child: new locks, thread, Redis pool and subscription. The parent's Redis
        objects are kept untouched: closing them could wait forever on a pool lock that one of
        the parent's threads held at the moment of the fork."""
        self._inherited.append((self._redis, self._pubsub))
        self._pubsub = None
        if self._redis is not None:
            pool = self._redis.connection_pool
            self._redis = redis.Redis(connection_pool=redis.ConnectionPool(
                connection_class=pool.connection_class, **pool.connection_kwargs))
        self._init_process_state()

    def close(self) -> None:
        """Stop the watcher and drop the subscription; the snapshot stays usable."""
        self._closed = True
        self._stop.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=5)
        self._drop_pubsub()

    def _ensure_watcher(self) -> None:
        watcher = self._watcher
        if (watcher is None or not watcher.is_alive() or self._pid != os.getpid()) and not self._closed:
            self.start()

    def _tick(self) -> None:
        """One round of the watcher: wait up to a second for a message, then the checks."""
        now = time.monotonic()
        wait = min(1.0, max(0.01, self._next_db_check - now))
        waited = False
        if self._redis is not None:
            if now < self._redis_down_until:
                self._drop_pubsub()
            else:
                try:
                    waited = self._listen(wait)
                except (redis.RedisError, OSError, ValueError) as error:
                    self._redis_failed(error)
                    self._drop_pubsub()
        if not waited:
            self._stop.wait(wait)
        if time.monotonic() >= self._next_db_check:
            self._next_db_check = time.monotonic() + self.poll_seconds
            self._check_database()

    def _listen(self, wait: float) -> bool:
        """Wait for a message (True when it waited) and read the version key when it is due."""
        assert self._redis is not None
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            self._pubsub.subscribe(CHANNEL)
            self._last_key_check = 0.0  # something may have changed while we were not listening
        message = self._pubsub.get_message(timeout=wait)
        if message is not None:
            self._on_signal(message.get("data"))
        if time.monotonic() - self._last_key_check >= self.redis_check_seconds:
            self._last_key_check = time.monotonic()
            self._on_signal(self._redis.get(VERSION_KEY))
        return True

    def _on_signal(self, data: Any) -> None:
        """A version seen in Redis: reload when it is newer than ours (older ones are stale)."""
        if data is None:
            return
        current = self.version
        if current is None or int(data) > current:
            self.reload()

    def _check_database(self) -> None:
        try:
            version = self._source.version()
        except Exception as error:
            self._db_errors(error)
            return
        if version != self.version:  # "!=": a restored database may go back in time
            self.reload()

    def _redis_failed(self, error: BaseException) -> None:
        self._redis_down_until = time.monotonic() + self.redis_backoff_seconds
        self._redis_errors(error)

    def _drop_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except (redis.RedisError, OSError):
                pass


def _watch(ref: "weakref.ReferenceType[FlagStore]", stop: threading.Event) -> None:
    """The watcher thread's loop; it ends when stopped or when its store is gone."""
    while not stop.is_set():
        store = ref()
        if store is None:
            return
        try:
            store._tick()
        except Exception:  # never let the watcher die: log and carry on
            logger.exception("flags: watcher round failed")
            stop.wait(1.0)
        del store
