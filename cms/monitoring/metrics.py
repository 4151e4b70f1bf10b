"""The Prometheus metrics of the CMS, in one object per app.

Names follow Prometheus conventions: the `cms_` prefix, base units (seconds, bytes), `_total`
for counters, and only bounded labels (plugin id and version, fault kind, capability, the URL
rule, never an agent, client or raw path). Under Gunicorn, prometheus-client runs in
multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py): every worker writes its
values to files there and `/metrics` adds them up.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               disable_created_metrics, generate_latest)
from prometheus_client import multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The *_created series double the exposition and no dashboard or rule here reads them.
disable_created_metrics()

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FUEL_BUCKETS = (1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9)
MEMORY_BUCKETS = tuple(float(2 ** n) for n in range(16, 28))  # 64 KiB .. 128 MiB
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when prometheus-client runs in multiprocess mode, else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """Every metric the CMS exports. Without multiprocess mode they live in `registry` (one per
    app, so test apps do not share counts); with it, in the shared directory."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        plugin = ["plugin", "version"]
        self.plugin_calls = Counter(
            "cms_plugin_calls_total", "Plugin calls by outcome: ok, error (the plugin answered "
            "ok=false) or the fault kind.", plugin + ["outcome"], registry=r)
        self.plugin_call_duration = Histogram(
            "cms_plugin_call_duration_seconds", "Wall-clock time of a plugin call.", plugin,
            buckets=DURATION_BUCKETS, registry=r)
        self.plugin_call_fuel = Histogram(
            "cms_plugin_call_fuel", "Fuel (wasmtime instruction units) one plugin call consumed.",
            plugin, buckets=FUEL_BUCKETS, registry=r)
        self.plugin_call_memory = Histogram(
            "cms_plugin_call_peak_memory_bytes", "Peak linear memory of one plugin call.", plugin,
            buckets=MEMORY_BUCKETS, registry=r)
        self.plugin_near_limit = Counter(
            "cms_plugin_calls_near_limit_total", "Plugin calls that ended within 10 % of their "
            "memory or fuel limit (or hit it).", plugin + ["limit"], registry=r)
        self.plugin_memory_limit = Gauge(
            "cms_plugin_memory_limit_bytes", "The memory cap of a plugin version's calls.", plugin,
            multiprocess_mode="max", registry=r)
        self.plugin_fuel_limit = Gauge(
            "cms_plugin_fuel_limit", "The fuel cap of a plugin version's calls.", plugin,
            multiprocess_mode="max", registry=r)
        self.host_calls = Counter(
            "cms_plugin_host_calls_total", "Host calls plugins made, by capability and outcome "
            "(ok, an error code, or denied).", ["capability", "outcome"], registry=r)
        self.http_requests = Counter(
            "cms_http_requests_total", "HTTP requests by route (the URL rule) and status.",
            ["route", "method", "status"], registry=r)
        self.http_duration = Histogram(
            "cms_http_request_duration_seconds", "HTTP request latency by route.",
            ["route", "method"], buckets=HTTP_BUCKETS, registry=r)
        self.logins = Counter(
            "cms_logins_total", "Login attempts by outcome: success, failure or throttled.",
            ["outcome"], registry=r)
        self.worker_rss = Gauge(
            "cms_worker_resident_memory_bytes", "Resident memory of a worker process.", ["pid"],
            multiprocess_mode="liveall", registry=r)
        self.worker_cpu = Counter(
            "cms_worker_cpu_seconds_total", "CPU time (user + system) used by the workers.",
            registry=r)
        self.worker_restarts = Counter(
            "cms_worker_restarts_total", "Workers the Gunicorn master started to replace one "
            "that exited.", registry=r)
        self.alerts = Counter(
            "cms_alerts_total", "Alerts opened (or escalated) by the monitoring detectors.",
            ["kind", "severity"], registry=r)
        self.canary_rollbacks = Counter(
            "cms_plugin_canary_rollbacks_total", "Canaries the monitor rolled back because they "
            "regressed against the current version, by signal (fault_rate, fuel_per_call, "
            "memory_per_call, p95_ms).", plugin + ["signal"], registry=r)
        self.alert_notifications = Counter(
            "cms_alert_notifications_total", "Alert notifications by channel (webhook, email) "
            "and outcome (sent, failed).", ["channel", "outcome"], registry=r)

    def init_plugin(self, plugin_id: str, version: str, outcomes: tuple[str, ...]) -> None:
        """Create a plugin version's series at zero, so that a rate or `absent()` rule works
        before its first call."""
        for outcome in outcomes:
            self.plugin_calls.labels(plugin_id, version, outcome)
        for histogram in (self.plugin_call_duration, self.plugin_call_fuel, self.plugin_call_memory):
            histogram.labels(plugin_id, version)
        for limit in ("memory", "fuel"):
            self.plugin_near_limit.labels(plugin_id, version, limit)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every metric (of all workers in multiprocess mode)."""
        path = multiprocess_dir()
        if path:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=path)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def reset_multiprocess_dir(path: str) -> None:
    """Create `path`, or empty it of the files a previous server run left (Gunicorn start)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (Gunicorn child_exit); its counters keep counting."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(pid, path)


@functools.cache
def _master_restarts() -> Counter:
    return Counter("cms_worker_restarts_total", "Workers the Gunicorn master started to replace "
                   "one that exited.", registry=None)


def count_worker_restart() -> None:
    """Count one replacement worker (called in the Gunicorn master, multiprocess mode)."""
    if multiprocess_dir():
        _master_restarts().inc()
