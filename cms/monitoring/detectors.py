"""The detectors: pure functions from time-series buckets (and per-call samples) to findings.

Each finding names its kind, the plugin version (or none, for workers and logins), a severity
and a message an operator can act on. Thresholds come from MonitorSettings; docs/alerts.yml
holds the same rules for Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cms.monitoring.series import Buckets, peak, total
from cms.monitoring.settings import (CPU_SPIKE, FAULT_RATE, HOST_ERRORS, LOGIN_FAILURES,
                                     MEMORY_LEAK, WORKER_RSS, MonitorSettings)

WARNING, CRITICAL = "warning", "critical"
SEVERITY_RANK = {WARNING: 1, CRITICAL: 2}
#: Outcomes that are not faults of the plugin: answers, and the host's own trouble.
NOT_FAULTS = {"ok", "error", "host_error"}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Finding:
    """One detector firing for one plugin version (or worker, or the login form)."""

    kind: str
    severity: str
    message: str
    plugin_id: str | None = None
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.kind, self.plugin_id, self.version)


def _size(n: float) -> str:
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / 1024:.0f} KiB"


def _fuel(n: float) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.0f} k"


def fault_counts(buckets: Buckets, since_bucket: int) -> dict[str, int]:
    """Faults by kind (the plugin's own, not host_error) in the buckets from `since_bucket` on."""
    counts: dict[str, float] = {}
    for bucket, fields in buckets.items():
        if bucket < since_bucket:
            continue
        for name, value in fields.items():
            if name.startswith("f_") and name[2:] not in NOT_FAULTS:
                counts[name[2:]] = counts.get(name[2:], 0.0) + value
    return {kind: int(n) for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n}


def memory_leak(s: MonitorSettings, plugin_id: str, version: str, buckets: Buckets,
                since_bucket: int, samples: list[tuple[float, int, int]]) -> Finding | None:
    """Critical when calls end near (or at) the memory cap; a warning when the floor of peak
    memory per call keeps rising across the last calls."""
    near = int(total(buckets, "near_mem", since_bucket))
    hit = int(total(buckets, "f_memory_limit", since_bucket))
    calls = int(total(buckets, "calls", since_bucket))
    cap = peak(buckets, "mem_cap_max")
    if near + hit >= s.leak_near_cap_calls:
        where = f" of the {_size(cap)} cap" if cap else " of its cap"
        return Finding(MEMORY_LEAK, CRITICAL,
                       f"{plugin_id} {version}: {near + hit} of {calls} calls in the last "
                       f"{s.window_s} s ended within {100 - s.leak_near_cap * 100:.0f} %{where} "
                       f"({hit} hit memory_limit). Peak memory per call is at "
                       f"{_size(peak(buckets, 'mem_max', since_bucket))}.",
                       plugin_id, version, {"near_cap_calls": near, "memory_limit_faults": hit,
                                            "calls": calls, "memory_cap_bytes": cap})
    rising = rising_floor(samples[: s.leak_samples], s.leak_growth, s.leak_min_growth_kib * 1024)
    if rising is not None:
        first, last = rising
        return Finding(MEMORY_LEAK, WARNING,
                       f"{plugin_id} {version}: peak memory per call rose from {_size(first)} to "
                       f"{_size(last)} (+{(last / first - 1) * 100:.0f} %) across its last "
                       f"{min(len(samples), s.leak_samples)} calls and has not come down"
                       f"{f'; the cap is {_size(cap)}' if cap else ''}.",
                       plugin_id, version, {"from_bytes": first, "to_bytes": last,
                                            "memory_cap_bytes": cap})
    return None


def rising_floor(samples: list[tuple[float, int, int]], growth: float,
                 min_growth: int) -> tuple[int, int] | None:
    """(first, last) floor of peak memory when it rose in every quarter of `samples` (newest
    first) and by at least `growth` and `min_growth` bytes overall; else None. The floor (the
    smallest call of a quarter) ignores a change in the mix of light and heavy actions."""
    if len(samples) < 8:
        return None
    ordered = [memory for _, memory, _ in reversed(samples)]
    size = len(ordered) // 4
    floors = [min(ordered[i * size:(i + 1) * size]) for i in range(4)]
    if any(b < a for a, b in zip(floors, floors[1:])):
        return None
    first, last = floors[0], floors[-1]
    if first > 0 and last >= first * (1 + growth) and last - first >= min_growth:
        return first, last
    return None


def cpu_spike(s: MonitorSettings, plugin_id: str, version: str, buckets: Buckets,
              since_bucket: int, baseline: tuple[float, float] | None) -> Finding | None:
    """Critical when calls run out of fuel (or end near the fuel cap); a warning when the fuel
    per answered call is `cpu_spike_ratio` times its baseline (`baseline`: (answered calls,
    their fuel) before the window, or of the plugin's other versions)."""
    exhausted = int(total(buckets, "f_fuel_exhausted", since_bucket))
    near = int(total(buckets, "near_fuel", since_bucket))
    calls = total(buckets, "calls", since_bucket)
    cap = peak(buckets, "fuel_cap_max")
    if exhausted + near >= s.cpu_exhausted_calls:
        return Finding(CPU_SPIKE, CRITICAL,
                       f"{plugin_id} {version}: {exhausted} of {int(calls)} calls in the last "
                       f"{s.window_s} s ran out of fuel{f' ({_fuel(cap)} per call)' if cap else ''}"
                       f"{f' and {near} more came within 10 % of it' if near else ''}: the "
                       "plugin is spinning.",
                       plugin_id, version, {"fuel_exhausted": exhausted, "near_fuel_cap": near,
                                            "calls": int(calls), "fuel_cap": cap})
    answered = total(buckets, "answered", since_bucket)
    if baseline is None or answered < s.min_calls:
        return None
    base_calls, base_fuel = baseline
    if base_calls < s.min_calls or base_fuel <= 0:
        return None
    recent = total(buckets, "fuel_answered", since_bucket) / answered
    usual = base_fuel / base_calls
    if recent >= usual * s.cpu_spike_ratio:
        return Finding(CPU_SPIKE, WARNING,
                       f"{plugin_id} {version}: fuel per call jumped to {_fuel(recent)} in the last "
                       f"{s.window_s} s, {recent / usual:.1f} times its baseline of {_fuel(usual)}.",
                       plugin_id, version, {"fuel_per_call": recent, "baseline": usual})
    return None


def fault_rate(s: MonitorSettings, plugin_id: str, version: str, buckets: Buckets,
               since_bucket: int, explained: set[str] | None = None) -> Finding | None:
    """Critical when at least `fault_rate` of the calls in the window faulted; faults of the
    `explained` kinds (already reported by a more specific detector) are left out."""
    faults = fault_counts(buckets, since_bucket)
    calls = total(buckets, "calls", since_bucket)
    for kind in explained or ():
        calls -= faults.pop(kind, 0)
    count = sum(faults.values())
    if calls < s.min_calls or count < s.min_calls or count / calls < s.fault_rate:
        return None
    kinds = ", ".join(f"{kind} {n}" for kind, n in faults.items())
    return Finding(FAULT_RATE, CRITICAL,
                   f"{plugin_id} {version}: {count} of {int(calls)} calls in the last {s.window_s} s "
                   f"faulted ({count / calls * 100:.0f} %: {kinds}).",
                   plugin_id, version, {"faults": faults, "calls": int(calls)})


def host_errors(s: MonitorSettings, plugin_id: str, version: str, buckets: Buckets,
                since_bucket: int) -> Finding | None:
    """A warning when at least `host_error_rate` of the version's host calls failed."""
    calls = total(buckets, "hc", since_bucket)
    errors = total(buckets, "hc_err", since_bucket)
    if calls < s.min_calls or errors < s.min_calls or errors / calls < s.host_error_rate:
        return None
    return Finding(HOST_ERRORS, WARNING,
                   f"{plugin_id} {version}: {int(errors)} of {int(calls)} host calls in the last "
                   f"{s.window_s} s failed ({errors / calls * 100:.0f} %); see the host-call "
                   "errors by capability on /admin/health.",
                   plugin_id, version, {"host_calls": int(calls), "errors": int(errors)})


def worker_rss(s: MonitorSettings, worker_id: str, buckets: Buckets, since_bucket: int,
               latest: float) -> Finding | None:
    """A warning when a worker's RSS grew by `worker_rss_growth_mib` within the RSS window;
    critical above `worker_rss_max_mib` (when set)."""
    if s.worker_rss_max_mib and latest >= s.worker_rss_max_mib * MIB:
        return Finding(WORKER_RSS, CRITICAL,
                       f"worker {worker_id}: resident memory {_size(latest)} is above the "
                       f"{s.worker_rss_max_mib} MiB ceiling.", None, None,
                       {"worker": worker_id, "rss_bytes": latest})
    values = [f.get("rss_min", f["rss_max"]) for b, f in buckets.items()
              if b >= since_bucket and "rss_max" in f]
    if not values:
        return None
    low = min(values)
    if latest - low >= s.worker_rss_growth_mib * MIB:
        return Finding(WORKER_RSS, WARNING,
                       f"worker {worker_id}: resident memory grew from {_size(low)} to "
                       f"{_size(latest)} within {s.worker_rss_window_s // 60} min.", None, None,
                       {"worker": worker_id, "from_bytes": low, "rss_bytes": latest})
    return None


def login_failures(s: MonitorSettings, buckets: Buckets, since_bucket: int,
                   baseline_buckets: int, window_buckets: int) -> Finding | None:
    """A warning when failed logins in the window reach `login_failures` and are
    `login_spike_ratio` times their usual rate."""
    recent = total(buckets, "failure", since_bucket)
    before = sum(f.get("failure", 0.0) for b, f in buckets.items() if b < since_bucket)
    usual = before / max(1, baseline_buckets) * window_buckets
    if recent < s.login_failures or recent < usual * s.login_spike_ratio:
        return None
    throttled = int(total(buckets, "throttled", since_bucket))
    return Finding(LOGIN_FAILURES, WARNING,
                   f"{int(recent)} failed logins in the last {s.window_s} s (usually "
                   f"{usual:.0f}); {throttled} attempts were throttled. See the audit log "
                   "(auth.login.failure) for the accounts and addresses.",
                   None, None, {"failures": int(recent), "usual": usual, "throttled": throttled})
