"""Monitoring settings: detector thresholds, time-series resolution and alert delivery.

Parsed once from the environment by `cms.config.Settings.from_env` (the `monitoring` field);
every variable is listed in docs/monitoring.md.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Mapping

from cms.config import ConfigError, _bool, _int

#: Alert kinds, one per detector (docs/monitoring.md, docs/alerts.yml).
MEMORY_LEAK = "memory_leak"
CPU_SPIKE = "cpu_spike"
FAULT_RATE = "fault_rate"
HOST_ERRORS = "host_errors"
WORKER_RSS = "worker_rss"
LOGIN_FAILURES = "login_failures"
CANARY_REGRESSION = "canary_regression"
ALERT_KINDS = (MEMORY_LEAK, CPU_SPIKE, FAULT_RATE, HOST_ERRORS, WORKER_RSS, LOGIN_FAILURES,
               CANARY_REGRESSION)


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _words(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(w for w in raw.replace(",", " ").split() if w)


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    found = _words(env, name)
    for cidr in found:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(f"{name}: {cidr!r} is not an address or CIDR network") from None
    return found


def _kinds(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    found = _words(env, name, default)
    unknown = sorted(set(found) - set(ALERT_KINDS))
    if unknown:
        raise ConfigError(f"{name}: unknown alert kinds {', '.join(unknown)} "
                          f"(known: {', '.join(ALERT_KINDS)})")
    return found


@dataclass(frozen=True)
class MonitorSettings:
    """Detector thresholds and alert delivery; the defaults suit a small production site."""

    #: Each worker flushes its counts to the shared store and (one worker at a time, cluster-wide)
    #: evaluates the detectors at most this often.
    interval_s: float = 1.0
    bucket_s: int = 10
    retention_s: int = 3600
    #: The recent window every rate and count is taken over, and the baseline it is compared with.
    window_s: int = 60
    baseline_s: int = 900
    #: No rate-based detector fires on fewer calls than this in the window.
    min_calls: int = 5
    # Memory leak: calls ending within (1 - near_cap) of the memory cap, or the floor of peak
    # memory per call rising by `leak_growth` (and at least `leak_min_growth_kib`) across the last
    # `leak_samples` calls.
    leak_near_cap: float = 0.9
    leak_near_cap_calls: int = 3
    leak_samples: int = 40
    leak_growth: float = 0.5
    leak_min_growth_kib: int = 256
    # Per action: peak memory or fuel per call rising over the last `leak_trend_calls` calls of
    # one action (rank correlation with call order at least `leak_trend_tau`, the last quarter's
    # median `leak_growth` above the first's, and by `leak_min_growth_kib` or
    # `regression_min_fuel`) is a leak verdict: every call starts in a fresh sandbox, so a rise
    # means state carried between calls keeps growing.
    leak_trend_calls: int = 40
    leak_trend_tau: float = 0.6
    # A version against the one it replaced, per action (median of at least `regression_min_calls`
    # answered calls): `regression_ratio` times the memory (and `leak_min_growth_kib` more) or
    # the fuel (and `regression_min_fuel` more) is a verdict.
    regression_ratio: float = 3.0
    regression_min_calls: int = 5
    regression_min_fuel: int = 100_000
    # A version released with a gate override is watched more tightly: these replace the three
    # above (and the leak growth and minimum memory growth are halved).
    watch_trend_calls: int = 20
    watch_regression_ratio: float = 2.0
    watch_min_calls: int = 3
    # Guarded canaries: once both the canary and the current version have
    # `canary_compare_calls` calls in the window, a canary whose fault rate is
    # `canary_fault_margin` above the current one's, whose fuel or peak memory per call (median,
    # per action) is `canary_ratio` times it, or whose p95 wall time is `canary_latency_ratio`
    # times it (and `canary_latency_min_ms` more), is rolled back at once. Promoting the canary
    # needs `canary_min_calls` calls of it without a regression.
    canary_compare_calls: int = 20
    canary_fault_margin: float = 0.05
    canary_ratio: float = 1.5
    canary_latency_ratio: float = 2.0
    canary_latency_min_ms: int = 50
    canary_min_calls: int = 100
    # CPU spike: fuel per call `cpu_spike_ratio` times its baseline, or calls running out of fuel.
    cpu_spike_ratio: float = 3.0
    cpu_exhausted_calls: int = 3
    # API failures: share of plugin calls that fault, share of host calls that fail.
    fault_rate: float = 0.5
    host_error_rate: float = 0.5
    # Worker memory: growth of one worker's RSS within `worker_rss_window_s`, and a hard ceiling.
    worker_rss_growth_mib: int = 256
    worker_rss_window_s: int = 600
    worker_rss_max_mib: int = 0
    worker_sample_s: float = 5.0
    # Logins: failures in the window, and how far above their baseline rate they must be.
    login_failures: int = 30
    login_spike_ratio: float = 3.0
    # Delivery.
    webhooks: tuple[str, ...] = ()
    webhook_attempts: int = 4
    webhook_backoff_s: float = 0.5
    webhook_timeout_s: float = 5.0
    email: bool = True
    renotify_s: int = 900
    max_notifications_per_minute: int = 10
    #: Critical alerts of these kinds quarantine the plugin version (cms.plugins.lifecycle).
    quarantine_kinds: tuple[str, ...] = (MEMORY_LEAK, FAULT_RATE, CPU_SPIKE)
    #: Networks that may read /metrics without a token (a Prometheus server inside the cluster).
    metrics_allow: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "MonitorSettings":
        """Parse the CMS_MONITOR_*, CMS_ALERT_* and CMS_METRICS_* variables; raises ConfigError."""
        d = cls()
        settings = cls(
            interval_s=_float(env, "CMS_MONITOR_INTERVAL_SECONDS", d.interval_s, 0.05),
            bucket_s=_int(env, "CMS_MONITOR_BUCKET_SECONDS", d.bucket_s, 1),
            retention_s=_int(env, "CMS_MONITOR_RETENTION_SECONDS", d.retention_s, 60),
            window_s=_int(env, "CMS_MONITOR_WINDOW_SECONDS", d.window_s, 1),
            baseline_s=_int(env, "CMS_MONITOR_BASELINE_SECONDS", d.baseline_s, 1),
            min_calls=_int(env, "CMS_MONITOR_MIN_CALLS", d.min_calls, 1),
            leak_near_cap=_float(env, "CMS_MONITOR_LEAK_NEAR_CAP", d.leak_near_cap, 0.1),
            leak_near_cap_calls=_int(env, "CMS_MONITOR_LEAK_NEAR_CAP_CALLS", d.leak_near_cap_calls, 1),
            leak_samples=_int(env, "CMS_MONITOR_LEAK_SAMPLES", d.leak_samples, 8),
            leak_growth=_float(env, "CMS_MONITOR_LEAK_GROWTH", d.leak_growth, 0.01),
            leak_min_growth_kib=_int(env, "CMS_MONITOR_LEAK_MIN_GROWTH_KIB", d.leak_min_growth_kib),
            leak_trend_calls=_int(env, "CMS_MONITOR_LEAK_TREND_CALLS", d.leak_trend_calls, 8),
            leak_trend_tau=_float(env, "CMS_MONITOR_LEAK_TREND_TAU", d.leak_trend_tau, 0.1),
            canary_compare_calls=_int(env, "CMS_MONITOR_CANARY_COMPARE_CALLS",
                                      d.canary_compare_calls, 1),
            canary_fault_margin=_float(env, "CMS_MONITOR_CANARY_FAULT_MARGIN",
                                       d.canary_fault_margin, 0.0),
            canary_ratio=_float(env, "CMS_MONITOR_CANARY_RATIO", d.canary_ratio, 1.01),
            canary_latency_ratio=_float(env, "CMS_MONITOR_CANARY_LATENCY_RATIO",
                                        d.canary_latency_ratio, 1.01),
            canary_latency_min_ms=_int(env, "CMS_MONITOR_CANARY_LATENCY_MIN_MS",
                                       d.canary_latency_min_ms),
            canary_min_calls=_int(env, "CMS_MONITOR_CANARY_MIN_CALLS", d.canary_min_calls),
            regression_ratio=_float(env, "CMS_MONITOR_REGRESSION_RATIO", d.regression_ratio, 1.1),
            regression_min_calls=_int(env, "CMS_MONITOR_REGRESSION_MIN_CALLS",
                                      d.regression_min_calls, 1),
            regression_min_fuel=_int(env, "CMS_MONITOR_REGRESSION_MIN_FUEL", d.regression_min_fuel),
            watch_trend_calls=_int(env, "CMS_MONITOR_WATCH_TREND_CALLS", d.watch_trend_calls, 8),
            watch_regression_ratio=_float(env, "CMS_MONITOR_WATCH_REGRESSION_RATIO",
                                          d.watch_regression_ratio, 1.1),
            watch_min_calls=_int(env, "CMS_MONITOR_WATCH_MIN_CALLS", d.watch_min_calls, 1),
            cpu_spike_ratio=_float(env, "CMS_MONITOR_CPU_SPIKE_RATIO", d.cpu_spike_ratio, 1.0),
            cpu_exhausted_calls=_int(env, "CMS_MONITOR_CPU_EXHAUSTED_CALLS", d.cpu_exhausted_calls, 1),
            fault_rate=_float(env, "CMS_MONITOR_FAULT_RATE", d.fault_rate, 0.01),
            host_error_rate=_float(env, "CMS_MONITOR_HOST_ERROR_RATE", d.host_error_rate, 0.01),
            worker_rss_growth_mib=_int(env, "CMS_MONITOR_WORKER_RSS_GROWTH_MB",
                                       d.worker_rss_growth_mib, 1),
            worker_rss_window_s=_int(env, "CMS_MONITOR_WORKER_RSS_WINDOW_SECONDS",
                                     d.worker_rss_window_s, 10),
            worker_rss_max_mib=_int(env, "CMS_MONITOR_WORKER_RSS_MAX_MB", d.worker_rss_max_mib),
            worker_sample_s=_float(env, "CMS_MONITOR_WORKER_SAMPLE_SECONDS", d.worker_sample_s, 0.1),
            login_failures=_int(env, "CMS_MONITOR_LOGIN_FAILURES", d.login_failures, 1),
            login_spike_ratio=_float(env, "CMS_MONITOR_LOGIN_SPIKE_RATIO", d.login_spike_ratio, 1.0),
            webhooks=_words(env, "CMS_ALERT_WEBHOOKS"),
            webhook_attempts=_int(env, "CMS_ALERT_WEBHOOK_ATTEMPTS", d.webhook_attempts, 1),
            webhook_backoff_s=_float(env, "CMS_ALERT_WEBHOOK_BACKOFF_SECONDS", d.webhook_backoff_s),
            webhook_timeout_s=_float(env, "CMS_ALERT_WEBHOOK_TIMEOUT_SECONDS", d.webhook_timeout_s, 0.1),
            email=_bool(env, "CMS_ALERT_EMAIL", d.email),
            renotify_s=_int(env, "CMS_ALERT_RENOTIFY_SECONDS", d.renotify_s),
            max_notifications_per_minute=_int(env, "CMS_ALERT_MAX_PER_MINUTE",
                                              d.max_notifications_per_minute, 1),
            quarantine_kinds=_kinds(env, "CMS_ALERT_QUARANTINE", d.quarantine_kinds),
            metrics_allow=_networks(env, "CMS_METRICS_ALLOW"),
        )
        for url in settings.webhooks:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"CMS_ALERT_WEBHOOKS: {url!r} is not an http(s) URL")
        if settings.retention_s < settings.baseline_s + settings.window_s:
            raise ConfigError("CMS_MONITOR_RETENTION_SECONDS must cover the window plus the baseline")
        return settings
