"""What monitoring costs: the hooks per call, and one flush and evaluation (docs/monitoring.md).

    .venv/bin/python -m tests.monitoring.overhead [REDIS_URL]

Add PROMETHEUS_MULTIPROC_DIR=<empty dir> to measure prometheus-client's multiprocess mode.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from cms import create_app, monitoring
from cms.extensions import db
from cms.runtime import CallStats, Limits
from tests.conftest import make_settings

CALLS = 50_000


def per_call_us(hook: Callable[[], None]) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(CALLS):
            hook()
        runs.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(runs)


def main(redis_url: str | None = None) -> None:
    app = create_app(make_settings(Path(tempfile.mkdtemp()), redis_url=redis_url))
    monitor = app.extensions["monitoring"]
    stats = CallStats("softphone", "1.0.0", 56_000, 131_072, 2.1, 3)
    limits = Limits(fuel=10_000_000, memory_bytes=4 * 1024 * 1024)
    with app.app_context():
        db.create_all()
        print(f"plugin_call: {per_call_us(lambda: monitoring.plugin_call('softphone', '1.0.0', 'ok', stats, limits)):.1f} µs")
        print(f"host_call:   {per_call_us(lambda: monitoring.host_call('kv', 'ok', 'softphone', '1.0.0')):.1f} µs")
        for version in range(6):
            for _ in range(200):
                monitoring.plugin_call(f"plugin{version}", "1.0.0", "ok", stats, limits)
        started = time.perf_counter()
        monitor.flush()
        print(f"flush, 6 plugin versions: {(time.perf_counter() - started) * 1000:.1f} ms")
        runs = []
        for _ in range(20):
            started = time.perf_counter()
            monitor.evaluate(time.time())
            runs.append((time.perf_counter() - started) * 1000)
        print(f"evaluate, 6 plugin versions ({monitor.store.backend}): {statistics.median(runs):.1f} ms")
    app.extensions["cms"].runtime.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
