"""The detectors: pure functions from time-series buckets (and per-call samples) to findings.

Each finding names its kind, the plugin version (or none, for workers and logins), a severity
and a message an operator can act on. Thresholds come from MonitorSettings; docs/alerts.yml
holds the same rules for Prometheus.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from cms.monitoring.series import Buckets, Sample, peak, total
from cms.monitoring.settings import (CANARY_REGRESSION, CPU_SPIKE, FAULT_RATE, HOST_ERRORS,
                                     LOGIN_FAILURES, MEMORY_LEAK, WORKER_RSS, MonitorSettings)

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


#: Per action: (fuel per call, peak memory per call).
Baseline = Mapping[str, tuple[float, float]]


@dataclass(frozen=True)
class Lineage:
    """What the verdicts know of a version beyond its own calls: the version it replaced (for a
    canary, the current one), and whether it went out with a gate override (then it is watched
    with tighter thresholds). The comparison uses the replaced version's live calls only: its
    staging gate's figures come from synthetic vectors, and the gate compared those at upload."""

    predecessor: str | None = None
    watched: bool = False
    #: A canary: compared while it runs with `predecessor`, the current version.
    canary: bool = False


def action_baseline(samples: Iterable[Sample], min_calls: int) -> dict[str, tuple[float, float]]:
    """(median fuel, median peak memory) per answered call of every action with at least
    `min_calls` answered calls among `samples`."""
    by_action: dict[str, list[Sample]] = {}
    for sample in samples:
        if sample.answered and sample.action:
            by_action.setdefault(sample.action, []).append(sample)
    return {action: (statistics.median(x.fuel for x in calls),
                     statistics.median(x.memory for x in calls))
            for action, calls in by_action.items() if len(calls) >= min_calls}


@dataclass(frozen=True)
class _Thresholds:
    trend_calls: int
    ratio: float
    min_calls: int
    growth: float
    min_memory: int


def _thresholds(s: MonitorSettings, watched: bool) -> _Thresholds:
    """The verdicts' thresholds for a version (tighter when it went out with a gate override)."""
    if watched:
        return _Thresholds(s.watch_trend_calls, s.watch_regression_ratio, s.watch_min_calls,
                           s.leak_growth / 2, s.leak_min_growth_kib * 512)
    return _Thresholds(s.leak_trend_calls, s.regression_ratio, s.regression_min_calls,
                       s.leak_growth, s.leak_min_growth_kib * 1024)


def kendall_tau(values: list[float]) -> float:
    """Kendall's tau-b between `values` and their order: 1 when they only ever rise, about 0
    for values in random order (its spread is about 0.11 for 40 values)."""
    concordant = discordant = ties = 0
    n = len(values)
    for i in range(n):
        vi = values[i]
        for j in range(i + 1, n):
            if values[j] > vi:
                concordant += 1
            elif values[j] < vi:
                discordant += 1
            else:
                ties += 1
    pairs = n * (n - 1) // 2
    denominator = (pairs * (pairs - ties)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def _by_action(samples: Iterable[Sample], limit: int | None = None,
               answered: bool = False) -> dict[str, list[Sample]]:
    """Samples per action, newest first, at most `limit` each (only answered calls if asked)."""
    found: dict[str, list[Sample]] = {}
    for sample in samples:
        if answered and not sample.answered:
            continue
        group = found.setdefault(sample.action, [])
        if limit is None or len(group) < limit:
            group.append(sample)
    return found


def growing(values: list[float], growth: float, min_growth: float,
            tau: float) -> tuple[float, float, float] | None:
    """(first, last, tau) when chronological `values` keep rising: each quarter's median above
    the one before, the last `growth` and `min_growth` above the first, and their rank
    correlation with call order at least `tau`; else None."""
    if len(values) < 4:
        return None
    quarter = len(values) // 4
    medians = [statistics.median(values[i * quarter:(i + 1) * quarter]) for i in range(3)]
    medians.append(statistics.median(values[3 * quarter:]))
    first, last = medians[0], medians[-1]
    # Every quarter above the one before: a one-time step (a bigger agency starting to use an
    # action) leaves two quarters level, and memory moves in whole 64 KiB pages.
    if any(b <= a for a, b in zip(medians, medians[1:])):
        return None
    if first <= 0 or last < first * (1 + growth) or last - first < min_growth:
        return None
    found = kendall_tau(values)
    return (first, last, found) if found >= tau else None


def rising_action(s: MonitorSettings, samples: list[Sample],
                  watched: bool = False) -> tuple[str, str, float, float, int] | None:
    """(signal "memory" or "fuel", action, first, last, calls) when one action's peak memory or
    fuel per call kept rising over its last `leak_trend_calls` calls (fewer when watched)."""
    t = _thresholds(s, watched)
    for action, group in sorted(_by_action(samples, t.trend_calls, answered=True).items()):
        if len(group) < t.trend_calls:
            continue
        ordered = list(reversed(group))
        for signal, values, floor in (
                ("memory", [float(x.memory) for x in ordered], t.min_memory),
                ("fuel", [float(x.fuel) for x in ordered], s.regression_min_fuel)):
            found = growing(values, t.growth, floor, s.leak_trend_tau)
            if found is not None:
                return signal, action, found[0], found[1], len(ordered)
    return None


@dataclass(frozen=True)
class Regression:
    """One action of a version against the version it replaced."""

    signal: str  # "memory" or "fuel"
    action: str
    value: float  # this version's median per answered call
    usual: float  # the replaced version's
    calls: int
    rising: tuple[float, float] | None  # (first, last) when it also keeps rising call by call


def regression(s: MonitorSettings, samples: list[Sample], baseline: Baseline,
               watched: bool = False, ratio: float | None = None,
               min_calls: int | None = None) -> Regression | None:
    """The worst action whose median memory or fuel per answered call is `regression_ratio`
    (less when watched; `ratio` when given) times `baseline` (the version replaced), memory
    before fuel."""
    t = _thresholds(s, watched)
    if ratio is not None or min_calls is not None:
        t = _Thresholds(t.trend_calls, ratio or t.ratio, min_calls or t.min_calls, t.growth,
                        t.min_memory)
    groups = _by_action(samples, answered=True)
    for signal, index, floor in (("memory", 1, t.min_memory), ("fuel", 0, s.regression_min_fuel)):
        worst: Regression | None = None
        for action, group in sorted(groups.items()):
            before = baseline.get(action)
            if not before or before[index] <= 0 or len(group) < t.min_calls:
                continue
            values = [float(x.memory if index else x.fuel) for x in reversed(group)]
            value, usual = statistics.median(values), before[index]
            if value < usual * t.ratio or (worst is not None
                                           and value / usual <= worst.value / worst.usual):
                continue
            rise = growing(values, t.growth, 0.0, s.leak_trend_tau)
            # Fuel that also keeps rising call by call is growing state: a quarter of the
            # absolute floor is enough evidence then (memory moves in 64 KiB pages: no).
            if value - usual >= (floor / 4 if rise and signal == "fuel" else floor):
                worst = Regression(signal, action, value, usual, len(values),
                                   (rise[0], rise[1]) if rise else None)
        if worst is not None:
            return worst
    return None


@dataclass(frozen=True)
class CanaryCheck:
    """A canary against the current version over the window: each signal's (canary, current)
    figures, the calls of each, and the first signal past its threshold (None: no regression)."""

    calls: int
    current_calls: int
    signals: dict[str, tuple[float, float]]
    regressed: str | None = None
    message: str = ""

    @property
    def compared(self) -> bool:
        return bool(self.signals)


def canary_check(s: MonitorSettings, plugin_id: str, canary: str, current: str,
                 canary_buckets: Buckets, current_buckets: Buckets, since_bucket: int,
                 canary_samples: list[Sample], current_samples: list[Sample]) -> CanaryCheck:
    """Compare a running canary with the current version on the same signals: fault rate,
    fuel and peak memory per call (per action), p95 wall time."""
    calls = int(total(canary_buckets, "calls", since_bucket))
    current_calls = int(total(current_buckets, "calls", since_bucket))
    if calls < s.canary_compare_calls or current_calls < s.canary_compare_calls:
        return CanaryCheck(calls, current_calls, {})
    signals: dict[str, tuple[float, float]] = {}
    found: list[tuple[str, str]] = []
    faults = sum(fault_counts(canary_buckets, since_bucket).values())
    usual = sum(fault_counts(current_buckets, since_bucket).values())
    rate, usual_rate = faults / calls, usual / current_calls
    signals["fault_rate"] = (rate, usual_rate)
    if faults >= s.min_calls and rate >= usual_rate + s.canary_fault_margin:
        found.append(("fault_rate", f"{rate * 100:.0f} % of its calls faulted against "
                      f"{usual_rate * 100:.0f} % of {current}'s (+{(rate - usual_rate) * 100:.0f} "
                      f"points; {faults} of {calls} calls)"))
    before = action_baseline(current_samples, s.canary_compare_calls // 2)
    worse = regression(s, canary_samples, before, ratio=s.canary_ratio,
                       min_calls=max(1, s.canary_compare_calls // 2))
    for signal in ("memory", "fuel"):
        if worse is not None and worse.signal == signal:
            signals[f"{signal}_per_call"] = (worse.value, worse.usual)
            show = _size if signal == "memory" else _fuel
            found.append((f"{signal}_per_call",
                          f"{worse.action} uses {show(worse.value)} {signal} per call against "
                          f"{show(worse.usual)} on {current} ({worse.value / worse.usual:.1f} "
                          f"times; medians)"))
    p95, usual_p95 = _p95_ms(canary_samples), _p95_ms(current_samples)
    if p95 is not None and usual_p95 is not None:
        signals["p95_ms"] = (p95, usual_p95)
        if p95 >= usual_p95 * s.canary_latency_ratio and p95 - usual_p95 >= s.canary_latency_min_ms:
            found.append(("p95_ms", f"p95 wall time {p95:.0f} ms against {usual_p95:.0f} ms on "
                          f"{current} ({p95 / max(usual_p95, 0.001):.1f} times)"))
    if not found:
        return CanaryCheck(calls, current_calls, signals)
    signal, text = found[0]
    return CanaryCheck(calls, current_calls, signals, signal,
                       f"{plugin_id} canary {canary} regressed against {current}: {text}. "
                       f"Rolled back: its agents are on {current} again.")


def _p95_ms(samples: list[Sample]) -> float | None:
    """The exact p95 wall time of the calls among `samples` that recorded one (None under 20)."""
    times = sorted(x.wall_ms for x in samples if x.wall_ms > 0)
    if len(times) < 20:
        return None
    return times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]


def canary_regression(check: CanaryCheck, plugin_id: str, canary: str,
                      current: str) -> Finding | None:
    """The critical finding for a canary that regressed (it is rolled back automatically)."""
    if check.regressed is None:
        return None
    value, usual = check.signals.get(check.regressed, (0.0, 0.0))
    return Finding(CANARY_REGRESSION, CRITICAL, check.message, plugin_id, canary,
                   {"signal": check.regressed, "value": value, "baseline": usual,
                    "current": current, "calls": check.calls,
                    "current_calls": check.current_calls})


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
                since_bucket: int, samples: list[Sample], lineage: Lineage | None = None,
                before: Baseline | None = None) -> Finding | None:
    """Critical when calls end near (or at) the memory cap, when one action's peak memory per
    call keeps rising over its last calls, or when an action uses `regression_ratio` times the
    memory of the version this one replaced (`before`, that version's baseline); a warning when
    the floor of peak memory per call of the whole version keeps rising."""
    near = int(total(buckets, "near_mem", since_bucket))
    hit = int(total(buckets, "f_memory_limit", since_bucket))
    calls = int(total(buckets, "calls", since_bucket))
    cap = peak(buckets, "mem_cap_max")
    watched = lineage is not None and lineage.watched
    cap_text = f"; the cap is {_size(cap)}" if cap else ""
    watch_text = " (watched closely: released with a gate override)" if watched else ""
    if near + hit >= s.leak_near_cap_calls:
        where = f" of the {_size(cap)} cap" if cap else " of its cap"
        return Finding(MEMORY_LEAK, CRITICAL,
                       f"{plugin_id} {version}: {near + hit} of {calls} calls in the last "
                       f"{s.window_s} s ended within {100 - s.leak_near_cap * 100:.0f} %{where} "
                       f"({hit} hit memory_limit). Peak memory per call is at "
                       f"{_size(peak(buckets, 'mem_max', since_bucket))}.",
                       plugin_id, version, {"near_cap_calls": near, "memory_limit_faults": hit,
                                            "calls": calls, "memory_cap_bytes": cap})
    trend = rising_action(s, samples, watched)
    if trend is not None:
        signal, action, first, last, n = trend
        show = _size if signal == "memory" else _fuel
        what = "peak memory" if signal == "memory" else "fuel"
        return Finding(MEMORY_LEAK, CRITICAL,
                       f"{plugin_id} {version}: {what} per call of {action} rose from "
                       f"{show(first)} to {show(last)} (+{(last / first - 1) * 100:.0f} %) over "
                       f"its last {n} calls and keeps rising: each call starts in a fresh "
                       f"sandbox, so the plugin carries growing state between calls"
                       f"{cap_text}{watch_text}.",
                       plugin_id, version, {"signal": f"{signal}_trend", "action": action,
                                            "from": first, "to": last, "calls": n,
                                            "memory_cap_bytes": cap, "watched": watched})
    if before and lineage is not None and lineage.predecessor:
        found = regression(s, samples, before, watched)
        if found is not None and (found.signal == "memory" or found.rising is not None):
            return _regression_finding(MEMORY_LEAK, plugin_id, version, lineage, found)
    rising = rising_floor(samples[: s.leak_samples], s.leak_growth, s.leak_min_growth_kib * 1024)
    if rising is not None:
        first, last = rising
        return Finding(MEMORY_LEAK, WARNING,
                       f"{plugin_id} {version}: peak memory per call rose from {_size(first)} to "
                       f"{_size(last)} (+{(last / first - 1) * 100:.0f} %) across its last "
                       f"{min(len(samples), s.leak_samples)} calls and has not come down"
                       f"{cap_text}.",
                       plugin_id, version, {"from_bytes": first, "to_bytes": last,
                                            "memory_cap_bytes": cap})
    return None


def _regression_finding(kind: str, plugin_id: str, version: str, lineage: Lineage,
                        found: Regression) -> Finding:
    show = _size if found.signal == "memory" else _fuel
    what = "memory" if found.signal == "memory" else "fuel"
    text = (f"{plugin_id} {version}: {found.action} uses {show(found.value)} {what} per call, "
            f"{found.value / found.usual:.1f} times what {lineage.predecessor} used for it "
            f"({show(found.usual)}; medians of {found.calls} calls)")
    if found.rising is not None:
        first, last = found.rising
        text += (f", and it keeps rising call by call ({show(first)} to {show(last)}): the "
                 "plugin carries growing state between calls")
    if lineage.watched:
        text += " (watched closely: released with a gate override)"
    return Finding(kind, CRITICAL, text + ".", plugin_id, version, {
        "signal": f"{found.signal}_per_call", "action": found.action, "value": found.value,
        "baseline": found.usual, "predecessor": lineage.predecessor, "calls": found.calls,
        "rising": found.rising is not None, "watched": lineage.watched})


def rising_floor(samples: list[Sample], growth: float,
                 min_growth: int) -> tuple[int, int] | None:
    """(first, last) floor of peak memory when it rose in every quarter of `samples` (newest
    first) and by at least `growth` and `min_growth` bytes overall; else None. The floor (the
    smallest call of a quarter) ignores a change in the mix of light and heavy actions."""
    if len(samples) < 8:
        return None
    ordered = [sample.memory for sample in reversed(samples)]
    size = len(ordered) // 4
    floors = [min(ordered[i * size:(i + 1) * size]) for i in range(4)]
    if any(b < a for a, b in zip(floors, floors[1:])):
        return None
    first, last = floors[0], floors[-1]
    if first > 0 and last >= first * (1 + growth) and last - first >= min_growth:
        return first, last
    return None


def cpu_spike(s: MonitorSettings, plugin_id: str, version: str, buckets: Buckets,
              since_bucket: int, baseline: tuple[float, float] | None,
              samples: list[Sample] | None = None, lineage: Lineage | None = None,
              before: Baseline | None = None) -> Finding | None:
    """Critical when calls run out of fuel (or end near the fuel cap), or when an action uses
    `regression_ratio` times the fuel of the version this one replaced (`before`); a warning
    when the fuel per answered call is `cpu_spike_ratio` times its baseline (`baseline`:
    (answered calls, their fuel) before the window, or of the plugin's other versions)."""
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
    if samples and before and lineage is not None and lineage.predecessor:
        found = regression(s, samples, before, lineage.watched)
        if found is not None and found.signal == "fuel" and found.rising is None:
            return _regression_finding(CPU_SPIKE, plugin_id, version, lineage, found)
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
