"""The circuit breaker counts faults per plugin version across workers (Redis) or per process."""

from __future__ import annotations

import redis as redis_lib

from cms.plugins.breaker import FaultCounter


def test_faults_from_two_workers_add_up_in_redis(redis_url: str) -> None:
    first = FaultCounter(redis_lib.Redis.from_url(redis_url), threshold=5, window_s=60)
    second = FaultCounter(redis_lib.Redis.from_url(redis_url), threshold=5, window_s=60)
    counts = [counter.record("softphone", "1.1.0-leaky", "memory_limit")
              for counter in (first, second, first, second)]
    assert counts == [1, 2, 3, 4]
    assert not first.tripped(counts[-1])
    assert second.tripped(second.record("softphone", "1.1.0-leaky", "trap"))
    assert first.record("softphone", "1.0.0", "trap") == 1  # per version
    assert first.record("softphone", "1.1.0-leaky", "host_error") == 0  # not the plugin's fault


def test_the_window_forgets_old_faults(redis_url: str) -> None:
    import time

    counter = FaultCounter(redis_lib.Redis.from_url(redis_url), threshold=2, window_s=1)
    assert counter.record("mail", "1", "trap") == 1
    time.sleep(1.2)
    assert counter.record("mail", "1", "trap") == 1


def test_without_redis_or_with_redis_down_it_counts_in_process() -> None:
    alone = FaultCounter(None, threshold=3)
    assert [alone.record("terminal", "1", "trap") for _ in range(3)] == [1, 2, 3]
    down = FaultCounter(redis_lib.Redis(port=9, socket_timeout=0.2, socket_connect_timeout=0.2))
    assert [down.record("terminal", "1", "trap") for _ in range(2)] == [1, 2]
