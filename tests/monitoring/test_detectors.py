"""The detectors on hand-made buckets: each fires on its pattern, and not on a healthy one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cms.config import ConfigError, Settings
from cms.monitoring import detectors
from cms.monitoring.series import MemoryStore, Pending, Sample, latency_field, percentile_ms
from cms.monitoring.settings import MonitorSettings

S = MonitorSettings()
MIB = 1024 * 1024


def buckets(*rows: dict[str, float], start: int = 100) -> dict[int, dict[str, float]]:
    return {start + i: dict(row) for i, row in enumerate(rows)}


def leak_samples(start: int, step: int, n: int = 40, action: str = "") -> list[Sample]:
    """Newest first, like the store answers: memory rising by `step` a call."""
    return [Sample(float(i), start + i * step, 1000, action) for i in reversed(range(n))]


def test_calls_near_the_memory_cap_are_a_critical_leak() -> None:
    near = buckets({"calls": 20, "near_mem": 2, "f_memory_limit": 1, "mem_max": 4 * MIB,
                    "mem_cap_max": 4 * MIB})
    found = detectors.memory_leak(S, "softphone", "1.1.0-leaky", near, 100, [])
    assert found is not None and found.severity == "critical" and found.key == (
        "memory_leak", "softphone", "1.1.0-leaky")
    assert "3 of 20 calls" in found.message and "4.0 MiB cap" in found.message
    assert detectors.memory_leak(S, "softphone", "1.0.0", buckets({"calls": 20, "near_mem": 2}),
                                 100, []) is None


def test_peak_memory_rising_across_calls_of_several_actions_is_a_leak_warning() -> None:
    samples = [Sample(float(i), 256 * 1024 + i * 16 * 1024, 1000, f"action{i % 4}")
               for i in reversed(range(40))]  # 10 calls per action: too few for a verdict
    found = detectors.memory_leak(S, "softphone", "1.1.0-leaky", buckets({"calls": 40}), 100,
                                  samples)
    assert found is not None and found.severity == "warning" and "rose from" in found.message


def test_one_action_rising_over_its_last_calls_is_a_critical_leak() -> None:
    rising = leak_samples(256 * 1024, 16 * 1024, n=40, action="dial")
    steady = [Sample(x.at + 0.5, 2 * MIB, 5000, "toolbar") for x in rising]
    mixed = sorted(rising + steady, reverse=True)
    found = detectors.memory_leak(S, "softphone", "1.1.0-leaky", buckets({"calls": 80}), 100, mixed)
    assert found is not None and found.severity == "critical"
    assert found.details["signal"] == "memory_trend" and found.details["action"] == "dial"
    assert found.message.startswith("softphone 1.1.0-leaky: peak memory per call of dial rose "
                                    "from 328 KiB to 808 KiB")
    # One call fewer than leak_trend_calls is no verdict yet.
    assert detectors.memory_leak(S, "softphone", "1.1.0-leaky", buckets({"calls": 80}), 100,
                                 sorted(rising[:39] + steady, reverse=True)) is None


def test_fuel_rising_call_by_call_is_a_leak_too() -> None:
    samples = [Sample(float(i), 128 * 1024, 100_000 + i * 40_000, "dial")
               for i in reversed(range(40))]
    found = detectors.memory_leak(S, "softphone", "1.1.0-leaky", buckets({"calls": 40}), 100,
                                  samples)
    assert found is not None and found.severity == "critical"
    assert found.details["signal"] == "fuel_trend" and "fuel per call of dial" in found.message


def _noisy(n: int, seed: int, action: str = "compose") -> list[Sample]:
    """A healthy action: memory and fuel depend on each call's input, in random order."""
    import random

    rng = random.Random(seed)
    return [Sample(float(i), rng.choice([128, 192, 256, 512, 1024]) * 1024,
                   rng.randint(50_000, 2_000_000), action) for i in reversed(range(n))]


def test_healthy_actions_with_input_dependent_costs_are_never_a_leak_verdict() -> None:
    # Slide a 40-call window over 5,000 calls of each of 20 seeds, as the monitor does.
    for seed in range(20):
        calls = _noisy(5000, seed)
        for start in range(0, len(calls) - 40, 7):
            assert detectors.rising_action(S, calls[start:start + 40]) is None, (seed, start)


@pytest.mark.parametrize("samples", [
    [Sample(float(i), (256 if i % 2 else 1024) * 1024, 1000) for i in range(40)],  # two actions
    leak_samples(256 * 1024, 0),                                             # flat
    leak_samples(4 * MIB, 1024),                                             # +1 KiB a call: noise
    [Sample(float(i), m, 0) for i, m in enumerate([300_000] * 20 + [900_000] * 20)],  # dropped
    leak_samples(256 * 1024, 16 * 1024, n=6),                                # too few calls
])
def test_healthy_memory_patterns_are_no_leak(samples: list[Sample]) -> None:
    assert detectors.memory_leak(S, "softphone", "1.0.0", buckets({"calls": 40}), 100,
                                 samples) is None


def test_running_out_of_fuel_is_a_critical_cpu_spike() -> None:
    spinning = buckets({"calls": 5, "f_fuel_exhausted": 3, "fuel_cap_max": 20e6})
    found = detectors.cpu_spike(S, "mail", "1.1.0-spinning", spinning, 100, None)
    assert found is not None and found.severity == "critical" and "ran out of fuel" in found.message


def test_fuel_per_call_against_its_baseline() -> None:
    recent = buckets({"calls": 10, "answered": 10, "fuel_answered": 10 * 4e6}, start=106)
    jump = detectors.cpu_spike(S, "mail", "1.2.0", recent, 106, (100.0, 100 * 1e6))
    assert jump is not None and jump.severity == "warning" and "4.0 times" in jump.message
    assert detectors.cpu_spike(S, "mail", "1.2.0", recent, 106, (100.0, 100 * 2e6)) is None
    assert detectors.cpu_spike(S, "mail", "1.2.0", recent, 106, None) is None
    assert detectors.cpu_spike(S, "mail", "1.2.0", recent, 106, (2.0, 2e6)) is None


def test_fault_rate_and_what_other_detectors_explain() -> None:
    failing = buckets({"calls": 10, "f_trap": 4, "f_capability_denied": 2, "f_ok": 4})
    found = detectors.fault_rate(S, "terminal", "1.1.0-failing", failing, 100)
    assert found is not None and "6 of 10 calls" in found.message
    assert found.details["faults"] == {"trap": 4, "capability_denied": 2}
    assert detectors.fault_rate(S, "terminal", "1.1.0-failing", failing, 100, {"trap"}) is None
    host_trouble = buckets({"calls": 10, "f_host_error": 8, "f_ok": 2})
    assert detectors.fault_rate(S, "terminal", "1.0.0", host_trouble, 100) is None
    few = buckets({"calls": 3, "f_trap": 3})
    assert detectors.fault_rate(S, "terminal", "1.0.0", few, 100) is None


def test_host_call_error_rate() -> None:
    found = detectors.host_errors(S, "terminal", "1.0.0", buckets({"hc": 20, "hc_err": 12}), 100)
    assert found is not None and found.kind == "host_errors" and "12 of 20" in found.message
    assert detectors.host_errors(S, "terminal", "1.0.0", buckets({"hc": 20, "hc_err": 4}), 100) is None


def test_worker_rss_growth_and_ceiling() -> None:
    grown = buckets({"rss_max": 200 * MIB}, {"rss_max": 300 * MIB}, {"rss_max": 480 * MIB})
    found = detectors.worker_rss(S, "web1:42", grown, 100, 480 * MIB)
    assert found is not None and found.severity == "warning" and "web1:42" in found.message
    assert detectors.worker_rss(S, "web1:42", grown, 100, 300 * MIB) is None
    ceiling = replace(S, worker_rss_max_mib=400)
    assert detectors.worker_rss(ceiling, "web1:42", grown, 100, 480 * MIB).severity == "critical"  # type: ignore[union-attr]


def test_login_failures_spike_against_their_usual_rate() -> None:
    quiet = [{"failure": 1.0}] * 90
    spike = buckets(*quiet, *[{"failure": 10.0, "throttled": 2.0}] * 6)
    found = detectors.login_failures(S, spike, 190, 90, 6)
    assert found is not None and "60 failed logins" in found.message
    steady = buckets(*[{"failure": 10.0}] * 96)  # always this many: not a spike
    assert detectors.login_failures(S, steady, 190, 90, 6) is None


def test_pending_counts_flush_into_the_store_and_percentiles_read_back() -> None:
    pending, store = Pending(10), MemoryStore(10, 3600)
    for ms in [1.5] * 50 + [40.0] * 45 + [900.0] * 5:
        pending.add("p|mail|1.0.0", 1000.0, {"calls": 1.0, latency_field(ms): 1.0},
                    {"mem_max": ms})
    pending.sample("p|mail|1.0.0", 1000.0, 65536, 1000)
    deltas, samples = pending.take()
    store.apply(deltas, samples, 1000.0)
    data = store.read(["p|mail|1.0.0"], 900.0, 1000.0)["p|mail|1.0.0"]
    assert data[100]["calls"] == 100 and data[100]["mem_max"] == 900.0
    assert 1 < percentile_ms(data, 0.5) <= 2  # type: ignore[operator]
    assert 500 < percentile_ms(data, 0.99) <= 1000  # type: ignore[operator]
    assert store.samples("p|mail|1.0.0") == [Sample(1000.0, 65536, 1000)]
    assert pending.take() == ({}, {})


@pytest.mark.parametrize(("env", "error"), [
    ({"CMS_MONITOR_FAULT_RATE": "half"}, "must be a number"),
    ({"CMS_ALERT_WEBHOOKS": "ftp://x"}, r"not an http\(s\) URL"),
    ({"CMS_METRICS_ALLOW": "10.0.0.0/33"}, "not an address or CIDR"),
    ({"CMS_ALERT_QUARANTINE": "memory_leak,bogus"}, "unknown alert kinds bogus"),
    ({"CMS_MONITOR_RETENTION_SECONDS": "120"}, "must cover the window"),
])
def test_bad_monitoring_settings_are_refused(env: dict[str, str], error: str, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match=error):
        Settings.from_env({"CMS_SECRET_KEY": "x", **env}, instance_path=tmp_path)


def test_monitoring_settings_from_the_environment(tmp_path: Any) -> None:
    settings = Settings.from_env({
        "CMS_SECRET_KEY": "x", "CMS_MONITOR_FAULT_RATE": "0.25", "CMS_MONITOR_BUCKET_SECONDS": "5",
        "CMS_ALERT_WEBHOOKS": "https://hooks.example/a, http://10.0.0.5/b",
        "CMS_METRICS_ALLOW": "10.0.0.0/8 ::1", "CMS_ALERT_QUARANTINE": "",
    }, instance_path=tmp_path).monitoring
    assert settings.fault_rate == 0.25 and settings.bucket_s == 5
    assert settings.webhooks == ("https://hooks.example/a", "http://10.0.0.5/b")
    assert settings.metrics_allow == ("10.0.0.0/8", "::1") and settings.quarantine_kinds == ()
    assert Settings.from_env({"CMS_SECRET_KEY": "x"}, instance_path=tmp_path).monitoring == MonitorSettings()


@pytest.mark.redis
def test_the_redis_store_adds_sums_and_keeps_extremes_across_workers(redis_url: str) -> None:
    from cms.redis_client import make_redis
    from cms.monitoring.series import RedisStore

    workers = [RedisStore(make_redis(redis_url, 2.0), 10, 3600) for _ in range(2)]
    for n, store in enumerate(workers):
        pending = Pending(10)
        pending.add("w|host:1", 1005.0, {"calls": 2.0 + n}, {"rss_max": 100.0 + n, "rss_min": 50.0 - n})
        pending.sample("p|mail|1.0.0", 1000.0 + n, 65536 * (n + 1), 10, "send", n == 0)
        store.apply(*pending.take(), 1005.0)
    for store in workers:
        assert store.read(["w|host:1"], 1000.0, 1009.0)["w|host:1"] == {
            100: {"calls": 5.0, "rss_max": 101.0, "rss_min": 49.0}}
        assert store.samples("p|mail|1.0.0") == [Sample(1001.0, 131072, 10, "send", False),
                                                 Sample(1000.0, 65536, 10, "send", True)]
        assert store.series("w|", 1005.0) == ["w|host:1"]
    assert [store.try_lead(5.0) for store in workers] == [True, False]  # one evaluator at a time


# Against the version it replaced ---------------------------------------------------------------

BEFORE = {"dial": (50_000.0, 128.0 * 1024), "toolbar": (30_000.0, 128.0 * 1024),
          "search": (100_000.0, 128.0 * 1024)}


def _calls(action: str, fuels: list[int], memory: int = 128 * 1024) -> list[Sample]:
    return [Sample(float(i), memory, fuel, action) for i, fuel in reversed(list(enumerate(fuels)))]


def _verdicts(samples: list[Sample], watched: bool = False) -> list[detectors.Finding]:
    lineage = detectors.Lineage("1.0.0", watched)
    found = [detectors.memory_leak(S, "softphone", "1.1.0", buckets({"calls": 5}), 100, samples,
                                   lineage, BEFORE),
             detectors.cpu_spike(S, "softphone", "1.1.0", buckets({"calls": 5}), 100, None,
                                 samples, lineage, BEFORE)]
    return [f for f in found if f is not None]


def test_fuel_far_above_the_replaced_version_and_rising_is_a_leak() -> None:
    (found,) = _verdicts(_calls("dial", [112_934, 150_762, 189_000, 227_000, 266_000]))
    assert (found.kind, found.severity) == ("memory_leak", "critical")
    assert found.message.startswith("softphone 1.1.0: dial uses 189 k fuel per call, 3.8 times "
                                    "what 1.0.0 used for it (50 k; medians of 5 calls), and it "
                                    "keeps rising call by call")
    assert found.details["predecessor"] == "1.0.0" and found.details["rising"] is True


def test_fuel_far_above_the_replaced_version_but_steady_is_a_cpu_spike() -> None:
    (found,) = _verdicts(_calls("dial", [201_000, 199_000, 200_500, 198_000, 200_000]))
    assert (found.kind, found.severity) == ("cpu_spike", "critical")
    assert "dial uses 200 k fuel per call, 4.0 times what 1.0.0 used" in found.message


def test_memory_far_above_the_replaced_version_is_a_leak() -> None:
    (found,) = _verdicts(_calls("toolbar", [30_000] * 5, memory=512 * 1024))
    assert (found.kind, found.details["signal"]) == ("memory_leak", "memory_per_call")
    assert "toolbar uses 512 KiB memory per call, 4.0 times what 1.0.0 used for it (128 KiB" in \
        found.message


def test_a_gate_override_watches_more_tightly() -> None:
    slower = _calls("search", [250_000, 252_000, 249_000])  # 2.5x, 3 calls
    assert _verdicts(slower) == [] and _verdicts(slower * 2) == []
    (found,) = _verdicts(slower, watched=True)
    assert found.kind == "cpu_spike" and "watched closely" in found.message


@pytest.mark.parametrize("samples", [
    _calls("dial", [60_000, 55_000, 58_000, 61_000, 59_000]),          # about the same
    _calls("dial", [200_000] * 4),                                      # too few calls
    _calls("unknown", [900_000] * 10),                                  # no baseline for it
    _calls("dial", [60_000] * 10, memory=12 * MIB),                     # steady, high: no cap near
], ids=["same", "few", "new-action", "steady-high-memory"])
def test_a_version_like_the_one_it_replaced_is_no_verdict(samples: list[Sample]) -> None:
    before = dict(BEFORE, dial=(50_000.0, 12.0 * MIB)) if samples[0].memory == 12 * MIB else BEFORE
    lineage = detectors.Lineage("1.0.0")
    assert detectors.memory_leak(S, "softphone", "1.1.0", buckets({"calls": 10,
                                 "mem_cap_max": 16 * MIB}), 100, samples, lineage, before) is None
    assert detectors.cpu_spike(S, "softphone", "1.1.0", buckets({"calls": 10}), 100, None,
                               samples, lineage, before) is None


def test_a_one_time_step_is_not_a_leak() -> None:
    """25 calls at 1 MiB, then 15 at 1.5 MiB (a bigger agency starts using the action): the
    cost rose once and stays level, nothing keeps growing."""
    step = [Sample(float(i), (1024 if i < 25 else 1536) * 1024, 100_000 if i < 25 else 400_000,
                   "search") for i in reversed(range(40))]
    assert detectors.rising_action(S, step) is None
    found = detectors.memory_leak(S, "p", "v", buckets({"calls": 40}), 100, step)
    # At most the old version-wide warning that memory rose (it did); never a quarantine.
    assert found is None or found.severity == "warning"


def test_the_canary_p95_is_exact_not_read_off_the_latency_buckets() -> None:
    """Current calls all near 190 ms, the canary's near 210 ms: 10 % slower, no regression (the
    bucketed p95 read 195 ms against 485 ms)."""
    current = [Sample(float(i), 65536, 1000, "a", True, 190.0 + i % 3) for i in range(40)]
    canary = [Sample(float(i), 65536, 1000, "a", True, 210.0 + i % 3) for i in range(40)]
    rows = buckets({"calls": 40.0})
    check = detectors.canary_check(S, "p", "2", "1", rows, rows, 100, canary, current)
    assert check.regressed is None and check.signals["p95_ms"] == (212.0, 192.0)
    slow = [x._replace(wall_ms=x.wall_ms * 3) for x in canary]
    found = detectors.canary_check(S, "p", "2", "1", rows, rows, 100, slow, current)
    assert found.regressed == "p95_ms" and "p95 wall time 636 ms against 192 ms" in found.message
