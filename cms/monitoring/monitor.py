"""The per-app monitor: takes every plugin call, host call, login and request, counts it in
Prometheus and in the time series, and now and then runs the detectors and raises alerts.

The hot path (`plugin_call` and friends) only touches memory. `tick` flushes this worker's
counts to the shared store, samples the worker's RSS and CPU, and, in the one worker that holds
the cluster-wide lead for this interval, evaluates the detectors and records alerts (in its own
database session), notifies, and quarantines where configured.
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Mapping

from sqlalchemy.orm import Session

from cms.monitoring import detectors, series
from cms.monitoring.detectors import CRITICAL, Finding, Lineage
from cms.monitoring.metrics import Metrics
from cms.monitoring.notify import Notifier
from cms.monitoring.series import Buckets, Pending, SeriesStore, make_store
from cms.monitoring.settings import CANARY_REGRESSION, MonitorSettings

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]


def _rss_bytes() -> int:
    """This process's resident memory (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _cpu_seconds() -> float:
    times = os.times()
    return float(times.user + times.system)


class Monitor:
    """Metrics, time series, detectors and alert delivery of one app."""

    def __init__(self, settings: MonitorSettings, redis: Any | None = None,
                 smtp_url: str | None = None, mail_from: str = "noreply@cms.local",
                 tick_in_app: Callable[[], None] | None = None,
                 on_config_change: Callable[[int], None] | None = None,
                 lineage: Callable[[], Mapping[tuple[str, str], Lineage]] | None = None,
                 applied_version: Callable[[], int | None] | None = None) -> None:
        self.settings = settings
        #: The config version this worker's flags and plugin state were built from.
        self.applied_version = applied_version
        self._reported_version: int | None = None
        #: The versions in rollout: what each replaced, gate overrides, gate figures.
        self.lineage = lineage
        #: Announces a new config version (after a quarantine) to every worker.
        self.on_config_change = on_config_change
        #: Runs `tick` inside the app's context (what the worker thread calls).
        self.tick_in_app = tick_in_app
        self.metrics = Metrics()
        self.store: SeriesStore = make_store(redis, settings.bucket_s, settings.retention_s)
        self.pending = Pending(settings.bucket_s)
        self.notifier = Notifier(
            webhooks=settings.webhooks, smtp_url=smtp_url if settings.email else None,
            mail_from=mail_from, attempts=settings.webhook_attempts,
            backoff_s=settings.webhook_backoff_s, timeout_s=settings.webhook_timeout_s,
            max_per_minute=settings.max_notifications_per_minute, on_result=self._delivered)
        self.hostname = socket.gethostname()
        self._next_tick = 0.0
        self._tick_lock = threading.Lock()
        self._next_sample = 0.0
        self._worker: tuple[int, float, float, float] | None = None  # pid, started, cpu, at
        self._daemon: threading.Thread | None = None
        self._daemon_pid: int | None = None
        self._stop = threading.Event()
        self.last_findings: list[Finding] = []
        self._series_ready: set[tuple[str, str]] = set()
        #: The admin banner's summary of open alerts, and until when (monotonic) it holds.
        self.banner: tuple[float, Any] | None = None

    # The hooks: called on every call, so memory only. -----------------------------------------

    def plugin_call(self, plugin_id: str, version: str, outcome: str, stats: Any | None = None,
                    limits: Any | None = None, action: str = "") -> None:
        """Count one plugin call. `outcome`: "ok", "error" (an ok=false answer) or the fault
        kind; `stats` a CallStats (None when the call never ran); `limits` the call's Limits;
        `action` the action called (the leak and regression verdicts are per action)."""
        m = self.metrics
        now = time.time()
        m.plugin_calls.labels(plugin_id, version, outcome).inc()
        sums: dict[str, float] = {"calls": 1.0, f"f_{outcome}": 1.0}
        peaks: dict[str, float] = {}
        if stats is not None:
            memory, fuel, wall_ms = stats.peak_memory_bytes, stats.fuel_consumed, stats.wall_ms
            m.plugin_call_duration.labels(plugin_id, version).observe(wall_ms / 1000)
            m.plugin_call_fuel.labels(plugin_id, version).observe(fuel)
            m.plugin_call_memory.labels(plugin_id, version).observe(memory)
            sums.update({"dur_ms": wall_ms, "fuel": fuel, "mem": memory,
                         series.latency_field(wall_ms): 1.0})
            if outcome in ("ok", "error"):  # a faulted call stops early: no baseline for fuel
                sums.update({"answered": 1.0, "fuel_answered": fuel})
            peaks.update({"fuel_max": fuel, "mem_max": memory})
            if limits is not None:
                near = self.settings.leak_near_cap
                peaks.update({"mem_cap_max": limits.memory_bytes, "fuel_cap_max": limits.fuel})
                if memory >= limits.memory_bytes * near and outcome != "memory_limit":
                    sums["near_mem"] = 1.0
                    m.plugin_near_limit.labels(plugin_id, version, "memory").inc()
                if fuel >= limits.fuel * 0.9 and outcome != "fuel_exhausted":
                    sums["near_fuel"] = 1.0
                    m.plugin_near_limit.labels(plugin_id, version, "fuel").inc()
            self.pending.sample(series.plugin_series(plugin_id, version), now, memory, fuel,
                                action, outcome in ("ok", "error"), wall_ms)
        if outcome == "memory_limit":
            m.plugin_near_limit.labels(plugin_id, version, "memory").inc()
        elif outcome == "fuel_exhausted":
            m.plugin_near_limit.labels(plugin_id, version, "fuel").inc()
        if limits is not None:
            m.plugin_memory_limit.labels(plugin_id, version).set(limits.memory_bytes)
            m.plugin_fuel_limit.labels(plugin_id, version).set(limits.fuel)
        self.pending.add(series.plugin_series(plugin_id, version), now, sums, peaks)

    def host_call(self, capability: str, outcome: str, plugin_id: str | None = None,
                  version: str | None = None) -> None:
        """Count one host call: `outcome` "ok", the error code answered, or "denied"."""
        self.metrics.host_calls.labels(capability, outcome).inc()
        now = time.time()
        failed = outcome != "ok"
        self.pending.add(series.host_series(capability), now,
                         {"calls": 1.0, "err": float(failed)})
        if plugin_id is not None and version is not None:
            self.pending.add(series.plugin_series(plugin_id, version), now,
                             {"hc": 1.0, "hc_err": float(failed)})

    def login(self, outcome: str) -> None:
        """Count one login attempt: "success", "failure" or "throttled"."""
        self.metrics.logins.labels(outcome).inc()
        self.pending.add(series.LOGINS, time.time(), {outcome: 1.0})

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.metrics.http_requests.labels(route, method, str(status)).inc()
        self.metrics.http_duration.labels(route, method).observe(seconds)

    def _delivered(self, channel: str, outcome: str) -> None:
        self.metrics.alert_notifications.labels(channel, outcome).inc()

    # Ticks: flush, sample, evaluate. ------------------------------------------------------------

    def daemon_running(self) -> bool:
        return (self._daemon is not None and self._daemon.is_alive()
                and self._daemon_pid == os.getpid())

    def maybe_tick(self, sessions: SessionFactory) -> None:
        """Tick when the interval has passed (at most once per interval in this process), unless
        this worker's monitoring thread does it; never raises."""
        if self.daemon_running():
            return
        now = time.monotonic()
        if now < self._next_tick or not self._tick_lock.acquire(blocking=False):
            return
        try:
            self._next_tick = now + self.settings.interval_s
            self.tick(sessions)
        except Exception:
            logger.exception("monitoring tick failed")
        finally:
            self._tick_lock.release()

    def tick(self, sessions: SessionFactory, lead: bool | None = None) -> list[Finding]:
        """Flush, sample the worker and (when this worker leads this interval) evaluate and raise
        alerts. Returns the findings it evaluated ([] when another worker leads)."""
        wall = time.time()
        self.ensure_plugin_series()
        # A new config version applied here is reported at once (the admin page counts the
        # workers that have it), not at the next sample.
        applied = self.applied_version() if self.applied_version is not None else None
        self.sample_worker(wall, force=applied != self._reported_version)
        self.flush(wall)
        if lead is None:
            lead = self.store.try_lead(self.settings.interval_s * 0.9)
        if not lead:
            return []
        findings = self.evaluate(wall)
        self.last_findings = findings
        if findings:
            self.raise_alerts(findings, sessions)
        return findings

    def ensure_plugin_series(self) -> None:
        """Create the metric series of every plugin version in rollout at zero (at start-up,
        and for a version published later, at the next tick)."""
        from plugin_sdk.abi import FaultKind

        new = [key for key in self._lineages() if key not in self._series_ready]
        outcomes = ("ok", "error", *(str(kind.value) for kind in FaultKind))
        for plugin_id, version in new:
            self.metrics.init_plugin(plugin_id, version, outcomes)
            self._series_ready.add((plugin_id, version))

    def flush(self, wall: float | None = None) -> None:
        deltas, samples = self.pending.take()
        self.store.apply(deltas, samples, wall or time.time())

    def sample_worker(self, wall: float, force: bool = False) -> None:
        """Record this worker's RSS and CPU (at most every `worker_sample_s`)."""
        now = time.monotonic()
        if not force and now < self._next_sample:
            return
        self._next_sample = now + self.settings.worker_sample_s
        pid, rss, cpu = os.getpid(), _rss_bytes(), _cpu_seconds()
        if self._worker is None or self._worker[0] != pid:
            # A fresh process (after fork, its CPU times start from zero).
            self._worker = (pid, wall, 0.0, wall)
        _, started, last_cpu, last_at = self._worker
        used = max(0.0, cpu - last_cpu)
        ratio = used / (wall - last_at) if wall > last_at else 0.0
        self._worker = (pid, started, cpu, wall)
        worker_id = f"{self.hostname}:{pid}"
        self.metrics.worker_rss.labels(str(pid)).set(rss)
        if used:
            self.metrics.worker_cpu.inc(used)
        self.pending.add(series.worker_series(worker_id), wall, {"cpu": used},
                         {"rss_max": rss, "rss_min": rss})
        applied = self.applied_version() if self.applied_version is not None else None
        self._reported_version = applied
        self.store.put_worker(worker_id, {"pid": pid, "host": self.hostname, "rss": rss,
                                          "cpu_seconds": cpu, "cpu_ratio": ratio,
                                          "started": started, "last_seen": wall,
                                          "config_version": applied})

    def evaluate(self, wall: float) -> list[Finding]:
        """Every detector over the shared series; pure reads."""
        s, bs = self.settings, self.settings.bucket_s
        since_bucket = int((wall - s.window_s) // bs)
        baseline_since = wall - s.window_s - s.baseline_s
        findings: list[Finding] = []
        plugin_ids = self.store.series("p|", wall)
        data = self.store.read(plugin_ids, baseline_since, wall)
        lineages = self._lineages()
        for name in plugin_ids:
            buckets = data.get(name, {})
            if not series.total(buckets, "calls", since_bucket):
                continue
            plugin_id, version = series.parse_plugin_series(name)
            findings += self._plugin_findings(plugin_id, version, buckets, since_bucket, data,
                                              lineages)
        findings += self._worker_findings(wall)
        logins = self.store.read([series.LOGINS], baseline_since, wall)[series.LOGINS]
        found = detectors.login_failures(s, logins, since_bucket,
                                         max(1, s.baseline_s // bs), max(1, s.window_s // bs))
        if found:
            findings.append(found)
        return findings

    def _lineages(self) -> Mapping[tuple[str, str], Lineage]:
        if self.lineage is None:
            return {}
        try:
            return self.lineage()
        except Exception:  # the verdicts on a version's own calls still run
            logger.exception("monitoring: could not read the plugin versions in rollout")
            return {}

    def _plugin_findings(self, plugin_id: str, version: str, buckets: Buckets,
                         since_bucket: int, data: dict[str, Buckets],
                         lineages: Mapping[tuple[str, str], Lineage]) -> list[Finding]:
        s = self.settings
        found: list[Finding] = []
        samples = self.store.samples(series.plugin_series(plugin_id, version))
        lineage = lineages.get((plugin_id, version))
        before = None
        predecessor_samples: list[Any] = []
        if lineage is not None and lineage.predecessor:
            # One read of the replaced (for a canary: the current) version's calls serves both
            # its baseline and the canary comparison.
            predecessor_samples = self.store.samples(
                series.plugin_series(plugin_id, lineage.predecessor))
            before = detectors.action_baseline(predecessor_samples, s.regression_min_calls)
        leak = detectors.memory_leak(s, plugin_id, version, buckets, since_bucket, samples,
                                     lineage, before)
        cpu = detectors.cpu_spike(s, plugin_id, version, buckets, since_bucket,
                                  self._fuel_baseline(plugin_id, version, since_bucket, data),
                                  samples, lineage, before)
        if lineage is not None and lineage.canary and lineage.predecessor:
            check = self._canary_check(plugin_id, version, lineage.predecessor, since_bucket,
                                       data, samples, predecessor_samples)
            canary = detectors.canary_regression(check, plugin_id, version, lineage.predecessor)
            if canary is not None:
                found.append(canary)
        explained: set[str] = set()
        for finding, kind in ((leak, "memory_limit"), (cpu, "fuel_exhausted")):
            if finding is not None:
                found.append(finding)
                if finding.severity == CRITICAL:
                    explained.add(kind)
        # Faults a leak or spin alert already explains do not raise a second, vaguer alert; and
        # failing host calls behind faults are part of the fault alert, not one of their own.
        faults = detectors.fault_rate(s, plugin_id, version, buckets, since_bucket, explained)
        host = detectors.host_errors(s, plugin_id, version, buckets, since_bucket)
        if faults is not None and host is not None:
            faults = replace(faults, message=f"{faults.message} Its host calls fail too: "
                             f"{host.details['errors']} of {host.details['host_calls']}.",
                             details={**faults.details, **host.details})
            host = None
        found += [f for f in (faults, host) if f is not None]
        return found

    def canary_check(self, plugin_id: str, canary: str, current: str,
                     wall: float | None = None) -> detectors.CanaryCheck:
        """The canary against the current version over the window, as the monitor sees it
        (for the plugin page and the promote guard)."""
        wall = wall or time.time()
        s = self.settings
        names = [series.plugin_series(plugin_id, v) for v in (canary, current)]
        data = self.store.read(names, wall - s.window_s, wall)
        return self._canary_check(plugin_id, canary, current, int((wall - s.window_s) // s.bucket_s),
                                  data, self.store.samples(names[0]), self.store.samples(names[1]))

    def workers_applied(self, version: int, wall: float | None = None) -> tuple[int, int, bool]:
        """(live workers that applied config `version` or later, live workers, whether the
        count covers every host: False without Redis, when only this worker is seen)."""
        wall = wall or time.time()
        self.sample_worker(wall, force=True)
        live = [info for info in self.store.workers(wall).values()
                if info.get("last_seen", 0) >= wall - max(30.0, 3 * self.settings.worker_sample_s)]
        applied = sum(1 for info in live if (info.get("config_version") or 0) >= version)
        return applied, len(live), self.store.backend == "redis"

    def calls_of(self, plugin_id: str, version: str, wall: float | None = None) -> int:
        """Calls of a version over the whole retention, across workers."""
        wall = wall or time.time()
        name = series.plugin_series(plugin_id, version)
        data = self.store.read([name], wall - self.settings.retention_s, wall)
        return int(series.total(data.get(name, {}), "calls"))

    def _canary_check(self, plugin_id: str, canary: str, current: str, since_bucket: int,
                      data: dict[str, Buckets], samples: list[Any],
                      current_samples: list[Any]) -> detectors.CanaryCheck:
        return detectors.canary_check(
            self.settings, plugin_id, canary, current,
            data.get(series.plugin_series(plugin_id, canary), {}),
            data.get(series.plugin_series(plugin_id, current), {}), since_bucket, samples,
            current_samples)

    def _fuel_baseline(self, plugin_id: str, version: str, since_bucket: int,
                       data: dict[str, Buckets]) -> tuple[float, float] | None:
        """(answered calls, their fuel) before the window: of this version, or, for a version
        too new to have one, of the plugin's other versions."""
        own = data.get(series.plugin_series(plugin_id, version), {})
        before = {b: f for b, f in own.items() if b < since_bucket}
        calls = series.total(before, "answered")
        if calls >= self.settings.min_calls:
            return calls, series.total(before, "fuel_answered")
        calls = fuel = 0.0
        for name, buckets in data.items():
            other_id, other_version = series.parse_plugin_series(name)
            if other_id == plugin_id and other_version != version:
                calls += series.total(buckets, "answered")
                fuel += series.total(buckets, "fuel_answered")
        return (calls, fuel) if calls >= self.settings.min_calls else None

    def _worker_findings(self, wall: float) -> list[Finding]:
        s = self.settings
        workers = self.store.workers(wall)
        live = {w: info for w, info in workers.items()
                if info.get("last_seen", 0) >= wall - max(60.0, 3 * s.worker_sample_s)}
        if not live:
            return []
        since = wall - s.worker_rss_window_s
        data = self.store.read([series.worker_series(w) for w in live], since, wall)
        found = []
        for worker_id, info in sorted(live.items()):
            finding = detectors.worker_rss(s, worker_id, data[series.worker_series(worker_id)],
                                           int(since // s.bucket_s), float(info.get("rss", 0)))
            if finding:
                found.append(finding)
        return found[:1]  # one worker alert at a time; the dashboard lists every worker

    def raise_alerts(self, findings: list[Finding], sessions: SessionFactory) -> None:
        """Record findings as alerts; notify, and quarantine where configured, for new ones."""
        from cms.monitoring import alerts

        with sessions() as session:
            recipients: list[str] | None = None
            for finding in findings:
                try:
                    raised = alerts.record(session, finding, renotify_s=self.settings.renotify_s)
                except Exception:
                    session.rollback()
                    logger.exception("could not record alert %s", finding.key)
                    continue
                if finding.kind == CANARY_REGRESSION:
                    # Idempotent, and whether or not the alert is new: a canary started again
                    # while its earlier alert is still open is rolled back all the same.
                    self._roll_back_canary(session, finding, raised.alert if raised else None)
                if raised is None:
                    continue
                alert = raised.alert
                self.metrics.alerts.labels(alert.kind, alert.severity).inc()
                logger.error("ALERT %s %s: %s", alert.severity, alert.kind, alert.message)
                if finding.kind == CANARY_REGRESSION:
                    pass  # rolled back above
                elif self._should_quarantine(finding):
                    self._quarantine(session, alert)
                if recipients is None:
                    recipients = alerts.admin_emails(session) if self.notifier.smtp_url else []
                self.notifier.send(alerts.payload(alert, raised.event), recipients)

    def _should_quarantine(self, finding: Finding) -> bool:
        return (finding.severity == CRITICAL and finding.kind in self.settings.quarantine_kinds
                and finding.plugin_id is not None and finding.version is not None)

    def _quarantine(self, session: Session, alert: Any) -> None:
        from cms.audit import Actor
        from cms.monitoring import alerts
        from cms.plugins.lifecycle import quarantine

        reason = f"{alert.kind.replace('_', ' ')} alert #{alert.id}: {alert.message}"
        try:
            done = quarantine(session, Actor.system("monitoring"), alert.plugin_id, alert.version,
                              reason, notify=self.on_config_change)
        except Exception:
            session.rollback()
            logger.exception("could not quarantine %s %s", alert.plugin_id, alert.version)
            return
        alerts.note(session, alert, quarantined=True, quarantined_by="monitoring" if done else
                    "already quarantined")

    def _roll_back_canary(self, session: Session, finding: Finding, alert: Any | None) -> None:
        from cms.audit import Actor
        from cms.monitoring import alerts
        from cms.plugins.lifecycle import roll_back_canary

        assert finding.plugin_id is not None and finding.version is not None
        cause = f"canary regression alert #{alert.id}" if alert is not None else "canary regression"
        try:
            done = roll_back_canary(session, Actor.system("monitoring"), finding.plugin_id,
                                    finding.version, f"{cause}: {finding.message}",
                                    dict(finding.details), notify=self.on_config_change)
        except Exception:
            session.rollback()
            logger.exception("could not roll back the canary %s %s", finding.plugin_id,
                             finding.version)
            return
        if done:
            self.metrics.canary_rollbacks.labels(finding.plugin_id, finding.version,
                                                 str(finding.details.get("signal"))).inc()
        if alert is not None:
            alerts.note(session, alert, rolled_back=done)

    # The worker thread (Gunicorn workers) -------------------------------------------------

    def start(self) -> None:
        """Tick every interval on a daemon thread of this worker, instead of in requests
        (Gunicorn post_worker_init, via cms.lifecycle)."""
        if self.daemon_running() or self.tick_in_app is None:
            return
        self._stop.clear()
        self._daemon_pid = os.getpid()
        tick = self.tick_in_app

        def loop() -> None:
            while not self._stop.wait(self.settings.interval_s):
                try:
                    tick()
                except Exception:
                    logger.exception("monitoring tick failed")

        self._daemon = threading.Thread(target=loop, name="cms-monitor", daemon=True)
        self._daemon.start()

    def stop_daemon(self) -> None:
        self._stop.set()
