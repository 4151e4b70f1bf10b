"""The circuit breaker: faults counted per plugin version across every worker and app instance
(Redis), or in this process without Redis. `record` says when a version crossed the threshold."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from typing import Any

logger = logging.getLogger(__name__)

#: Faults of the host's own making do not count against a plugin.
NOT_THE_PLUGINS = {"host_error"}


class FaultCounter:
    """Counts faults per (plugin, version) in a sliding window; shared through Redis if given."""

    def __init__(self, redis: Any | None, threshold: int = 5, window_s: float = 60.0) -> None:
        self.redis = redis
        self.threshold = threshold
        self.window_s = window_s
        self._local: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._redis_down_until = 0.0

    def record(self, plugin_id: str, version: str, kind: str) -> int:
        """Count one fault; return the faults of this version within the window (0 for faults
        that are not the plugin's)."""
        if kind in NOT_THE_PLUGINS:
            return 0
        now = time.time()
        if self.redis is not None and now >= self._redis_down_until:
            key = f"cms:faults:{plugin_id}:{version}"
            try:
                pipe = self.redis.pipeline()
                pipe.zadd(key, {f"{now}:{uuid.uuid4().hex[:8]}": now})
                pipe.zremrangebyscore(key, 0, now - self.window_s)
                pipe.zcard(key)
                pipe.expire(key, int(self.window_s) + 5)
                return int(pipe.execute()[2])
            except Exception as exc:  # Redis down or slow: count here, try Redis again later
                logger.warning("fault counter: Redis unavailable (%s); counting in-process", exc)
                self._redis_down_until = now + 5.0
        with self._lock:
            window = self._local[(plugin_id, version)]
            window.append(now)
            while window and window[0] < now - self.window_s:
                window.popleft()
            return len(window)

    def tripped(self, count: int) -> bool:
        return count >= self.threshold
