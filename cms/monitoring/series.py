"""Time series for the detectors and the dashboard: counts per series in fixed buckets
(10 s by default), kept for an hour, shared by every worker through Redis, or in this process
without Redis.

A worker adds up its calls in `Pending` (a dict update under a lock, no I/O) and flushes them to
the store at most once per interval. Series ids: `p|plugin|version`, `h|capability`, `l`
(logins) and `w|host:pid` (workers).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, NamedTuple, Protocol

logger = logging.getLogger(__name__)

#: Upper bounds (ms) of the latency buckets kept per time bucket, for p50/p95 over any window.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
#: Per-call samples (time, peak memory, fuel, action, answered, wall ms) per plugin version, newest
#: first: enough for the per-action trajectory of the busiest actions.
MAX_SAMPLES = 512
LOGINS = "l"
PREFIX = "cms:mon"


def plugin_series(plugin_id: str, version: str) -> str:
    return f"p|{plugin_id}|{version}"


def host_series(capability: str) -> str:
    return f"h|{capability}"


def worker_series(worker_id: str) -> str:
    return f"w|{worker_id}"


def parse_plugin_series(series: str) -> tuple[str, str]:
    """(plugin id, version) of a `p|...` series id."""
    _, plugin_id, version = series.split("|", 2)
    return plugin_id, version


def latency_field(ms: float) -> str:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms <= bound:
            return f"lat{i}"
    return f"lat{len(LATENCY_BOUNDS_MS)}"


def merge_peak(fields: dict[str, float], name: str, value: float) -> None:
    """Keep the extreme of field `name`: the least for names ending in `_min`, else the most."""
    current = fields.get(name)
    if current is None or (value < current if name.endswith("_min") else value > current):
        fields[name] = value


@dataclass
class Delta:
    """What one worker adds to one bucket of one series: sums, and extremes (`*_max` fields
    keep the most, `*_min` fields the least)."""

    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    peaks: dict[str, float] = field(default_factory=dict)

    def add(self, sums: Mapping[str, float], peaks: Mapping[str, float]) -> None:
        for name, value in sums.items():
            self.sums[name] += value
        for name, value in peaks.items():
            merge_peak(self.peaks, name, value)


Deltas = dict[tuple[str, int], Delta]
Samples = dict[str, list[str]]


class Pending:
    """This worker's counts not yet in the shared store. Thread-safe; never does I/O."""

    def __init__(self, bucket_s: int) -> None:
        self.bucket_s = bucket_s
        self._deltas: Deltas = {}
        self._samples: Samples = defaultdict(list)
        self._lock = threading.Lock()

    def add(self, series: str, now: float, sums: Mapping[str, float],
            peaks: Mapping[str, float] | None = None) -> None:
        key = (series, int(now // self.bucket_s))
        with self._lock:
            delta = self._deltas.get(key)
            if delta is None:
                delta = self._deltas[key] = Delta()
            delta.add(sums, peaks or {})

    def sample(self, series: str, now: float, memory: int, fuel: int, action: str = "",
               answered: bool = True, wall_ms: float = 0.0) -> None:
        """Keep one call's figures; `answered` is false for a call that faulted (it stopped
        early, so its fuel is no baseline)."""
        text = (f"{now:.3f}:{memory}:{fuel}:{action.replace(':', '_')}:{int(answered)}:"
                f"{wall_ms:.2f}")
        with self._lock:
            samples = self._samples[series]
            samples.append(text)
            if len(samples) > MAX_SAMPLES:
                del samples[:-MAX_SAMPLES]

    def take(self) -> tuple[Deltas, Samples]:
        """Everything pending, emptied."""
        with self._lock:
            deltas, samples = self._deltas, self._samples
            self._deltas, self._samples = {}, defaultdict(list)
        return deltas, dict(samples)


Buckets = dict[int, dict[str, float]]


class SeriesStore(Protocol):
    """Where the buckets of every worker meet."""

    backend: str
    bucket_s: int

    def apply(self, deltas: Deltas, samples: Samples, now: float) -> None: ...

    def series(self, kind: str, now: float) -> list[str]: ...

    def read(self, series: Iterable[str], since: float, now: float) -> dict[str, Buckets]: ...

    def samples(self, series: str) -> list[Sample]: ...

    def put_worker(self, worker_id: str, info: dict[str, Any]) -> None: ...

    def workers(self, now: float) -> dict[str, dict[str, Any]]: ...

    def try_lead(self, ttl_s: float) -> bool: ...


class Sample(NamedTuple):
    """One call of a plugin version: when it ended, its peak memory and fuel, its action, and
    whether it answered (ok or not) rather than faulted."""

    at: float
    memory: int
    fuel: int
    action: str = ""
    answered: bool = True
    wall_ms: float = 0.0


def _parse_sample(text: str | bytes) -> Sample:
    if isinstance(text, bytes):
        text = text.decode()
    parts = text.split(":")
    action, answered = (parts[3], parts[4] == "1") if len(parts) >= 5 else ("", True)
    wall_ms = float(parts[5]) if len(parts) >= 6 else 0.0
    return Sample(float(parts[0]), int(parts[1]), int(parts[2]), action, answered, wall_ms)


class MemoryStore:
    """The buckets of this process only (no Redis): the detectors see this worker's calls."""

    backend = "in-process"

    def __init__(self, bucket_s: int, retention_s: int) -> None:
        self.bucket_s = bucket_s
        self.retention_s = retention_s
        self._buckets: dict[str, Buckets] = defaultdict(dict)
        self._seen: dict[str, float] = {}
        self._samples: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=MAX_SAMPLES))
        self._workers: dict[str, dict[str, Any]] = {}
        self._lead_until = 0.0
        self._lock = threading.Lock()

    def apply(self, deltas: Deltas, samples: Samples, now: float) -> None:
        oldest = int((now - self.retention_s) // self.bucket_s)
        with self._lock:
            for (series, bucket), delta in deltas.items():
                fields = self._buckets[series].setdefault(bucket, defaultdict(float))
                for name, value in delta.sums.items():
                    fields[name] += value
                for name, value in delta.peaks.items():
                    merge_peak(fields, name, value)
                self._seen[series] = now
            for series, texts in samples.items():
                self._samples[series].extendleft(texts)
                self._seen[series] = now
            for series in list(self._buckets):
                buckets = self._buckets[series]
                for bucket in [b for b in buckets if b < oldest]:
                    del buckets[bucket]

    def series(self, kind: str, now: float) -> list[str]:
        with self._lock:
            return sorted(s for s, at in self._seen.items()
                          if s.startswith(kind) and at >= now - self.retention_s)

    def read(self, series: Iterable[str], since: float, now: float) -> dict[str, Buckets]:
        first, last = int(since // self.bucket_s), int(now // self.bucket_s)
        with self._lock:
            return {s: {b: dict(f) for b, f in self._buckets.get(s, {}).items() if first <= b <= last}
                    for s in series}

    def samples(self, series: str) -> list[Sample]:
        with self._lock:
            return [_parse_sample(t) for t in self._samples.get(series, ())]

    def put_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        with self._lock:
            self._workers[worker_id] = dict(info)

    def workers(self, now: float) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {w: dict(i) for w, i in self._workers.items()}

    def try_lead(self, ttl_s: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._lead_until:
                return False
            self._lead_until = now + ttl_s
            return True


# Sums with HINCRBYFLOAT, extremes compared in the script: one atomic step per bucket.
_APPLY = """
local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  local value = tonumber(ARGV[i + 1])
  local least = string.sub(ARGV[i], -4) == '_min'
  if current == nil or (least and value < current) or (not least and value > current) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

WORKER_STALE_S = 300.0


class RedisStore:
    """Buckets shared by every worker and host through Redis; while Redis is unreachable, this
    worker keeps counting in-process and tries Redis again a few seconds later."""

    backend = "redis"

    def __init__(self, redis: Any, bucket_s: int, retention_s: int) -> None:
        self.redis = redis
        self.bucket_s = bucket_s
        self.retention_s = retention_s
        self.fallback = MemoryStore(bucket_s, retention_s)
        self._script = redis.register_script(_APPLY)
        self._down_until = 0.0

    def _up(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._up():
            logger.warning("monitoring: Redis unavailable (%s); keeping series in-process", exc)
        self._down_until = time.monotonic() + 5.0

    def _key(self, series: str, bucket: int) -> str:
        return f"{PREFIX}:b:{series}:{bucket}"

    def apply(self, deltas: Deltas, samples: Samples, now: float) -> None:
        if not deltas and not samples:
            return
        if not self._up():
            self.fallback.apply(deltas, samples, now)
            return
        ttl = self.retention_s + 2 * self.bucket_s
        try:
            pipe = self.redis.pipeline(transaction=False)
            touched: dict[str, float] = {}
            for (series, bucket), delta in deltas.items():
                args: list[Any] = [ttl, len(delta.sums)]
                for name, value in delta.sums.items():
                    args += [name, repr(float(value))]
                for name, value in delta.peaks.items():
                    args += [name, repr(float(value))]
                self._script(keys=[self._key(series, bucket)], args=args, client=pipe)
                touched[series] = now
            for series, texts in samples.items():
                key = f"{PREFIX}:s:{series}"
                pipe.lpush(key, *texts)
                pipe.ltrim(key, 0, MAX_SAMPLES - 1)
                pipe.expire(key, ttl)
                touched[series] = now
            if touched:
                pipe.zadd(f"{PREFIX}:series", touched)
                pipe.zremrangebyscore(f"{PREFIX}:series", 0, now - self.retention_s)
            pipe.execute()
        except Exception as exc:  # Redis down or slow: these counts stay in this process
            self._failed(exc)
            self.fallback.apply(deltas, samples, now)

    def series(self, kind: str, now: float) -> list[str]:
        if self._up():
            try:
                found = self.redis.zrangebyscore(f"{PREFIX}:series", now - self.retention_s, "+inf")
                return sorted({s for s in found if s.startswith(kind)}
                              | set(self.fallback.series(kind, now)))
            except Exception as exc:
                self._failed(exc)
        return self.fallback.series(kind, now)

    def read(self, series: Iterable[str], since: float, now: float) -> dict[str, Buckets]:
        wanted = list(series)
        local = self.fallback.read(wanted, since, now)
        if not self._up():
            return local
        first, last = int(since // self.bucket_s), int(now // self.bucket_s)
        try:
            pipe = self.redis.pipeline(transaction=False)
            keys = [(s, b) for s in wanted for b in range(first, last + 1)]
            for s, b in keys:
                pipe.hgetall(self._key(s, b))
            answers = pipe.execute()
        except Exception as exc:
            self._failed(exc)
            return local
        found: dict[str, Buckets] = {s: {} for s in wanted}
        for (s, b), fields in zip(keys, answers):
            if fields:
                found[s][b] = {name: float(value) for name, value in fields.items()}
        for s, buckets in local.items():  # what this worker counted while Redis was away
            for b, fields in buckets.items():
                merged = found[s].setdefault(b, {})
                for name, value in fields.items():
                    if name.endswith(("_max", "_min")):
                        merge_peak(merged, name, value)
                    else:
                        merged[name] = merged.get(name, 0.0) + value
        return found

    def samples(self, series: str) -> list[Sample]:
        local = self.fallback.samples(series)
        if not self._up():
            return local
        try:
            texts = self.redis.lrange(f"{PREFIX}:s:{series}", 0, MAX_SAMPLES - 1)
        except Exception as exc:
            self._failed(exc)
            return local
        return sorted([_parse_sample(t) for t in texts] + local, reverse=True)[:MAX_SAMPLES]

    def put_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        self.fallback.put_worker(worker_id, info)
        if not self._up():
            return
        try:
            self.redis.hset(f"{PREFIX}:workers", worker_id, json.dumps(info))
        except Exception as exc:
            self._failed(exc)

    def workers(self, now: float) -> dict[str, dict[str, Any]]:
        if not self._up():
            return self.fallback.workers(now)
        try:
            raw = self.redis.hgetall(f"{PREFIX}:workers")
        except Exception as exc:
            self._failed(exc)
            return self.fallback.workers(now)
        found = {w: json.loads(text) for w, text in raw.items()}
        stale = [w for w, info in found.items() if info.get("last_seen", 0) < now - WORKER_STALE_S]
        if stale:
            try:
                self.redis.hdel(f"{PREFIX}:workers", *stale)
            except Exception as exc:
                self._failed(exc)
        return {w: info for w, info in found.items() if w not in stale}

    def try_lead(self, ttl_s: float) -> bool:
        """True for the one worker (cluster-wide) that evaluates the detectors this interval."""
        if not self._up():
            return self.fallback.try_lead(ttl_s)
        try:
            return bool(self.redis.set(f"{PREFIX}:lead", "1", nx=True,
                                       px=max(1, int(ttl_s * 1000))))
        except Exception as exc:
            self._failed(exc)
            return self.fallback.try_lead(ttl_s)


def make_store(redis: Any | None, bucket_s: int, retention_s: int) -> SeriesStore:
    """A Redis store when Redis is configured, otherwise an in-process one."""
    if redis is None:
        return MemoryStore(bucket_s, retention_s)
    return RedisStore(redis, bucket_s, retention_s)


def total(buckets: Buckets, name: str, since_bucket: int | None = None) -> float:
    """The sum of field `name` over `buckets` (from `since_bucket` on)."""
    return sum(f.get(name, 0.0) for b, f in buckets.items()
               if since_bucket is None or b >= since_bucket)


def peak(buckets: Buckets, name: str, since_bucket: int | None = None) -> float:
    values = [f[name] for b, f in buckets.items()
              if name in f and (since_bucket is None or b >= since_bucket)]
    return max(values) if values else 0.0


def percentile_ms(buckets: Buckets, q: float, since_bucket: int | None = None) -> float | None:
    """The q-quantile (0..1) of call latency from the latency buckets, interpolated within the
    bucket it falls in; None without calls."""
    counts = [total(buckets, f"lat{i}", since_bucket) for i in range(len(LATENCY_BOUNDS_MS) + 1)]
    calls = sum(counts)
    if calls <= 0:
        return None
    rank = q * calls
    seen = 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0.0
            high = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else LATENCY_BOUNDS_MS[-1] * 2
            return float(low + (high - low) * (rank - seen) / count)
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])
