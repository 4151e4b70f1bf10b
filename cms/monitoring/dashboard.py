"""What /admin/health shows: per plugin and version, rates over the last minutes, charts over the
last hour, and the rollout and quarantine state; the workers, the database and Redis."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy import select, text
from sqlalchemy.orm import Session, load_only

from cms.models import Alert, PluginInstall, PluginVersion
from cms.monitoring import alerts, charts, series, timeline
from cms.monitoring.detectors import NOT_FAULTS, fault_counts
from cms.monitoring.monitor import Monitor
from cms.monitoring.series import Buckets

RECENT_S = 300
HOUR_S = 3600
MINUTES = 60


@dataclass(frozen=True)
class VersionHealth:
    plugin_id: str
    version: str
    role: str
    quarantined_at: datetime | None
    quarantine_reason: str | None
    calls_per_min: float
    calls_hour: int
    faults: dict[str, int]
    fault_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    fuel_per_call: float | None
    memory_peak: float | None
    memory_cap: float | None
    host_calls: int
    host_errors: int
    charts: list[charts.Chart]

    @property
    def anchor(self) -> str:
        return f"{self.plugin_id}-{self.version}".replace(".", "-").replace("+", "-")


@dataclass(frozen=True)
class PluginHealth:
    plugin_id: str
    enabled: bool | None  # None: calls seen, but not installed here
    current: str | None
    canary: str | None
    canary_percent: int
    previous: str | None
    versions: list[VersionHealth]


@dataclass(frozen=True)
class WorkerHealth:
    worker_id: str
    pid: int
    host: str
    rss: float
    cpu_percent: float
    uptime_s: float
    seen_s_ago: float
    this_worker: bool


@dataclass(frozen=True)
class Dashboard:
    plugins: list[PluginHealth]
    workers: list[WorkerHealth]
    database: dict[str, Any]
    redis: dict[str, Any]
    backend: str
    host_calls: list[tuple[str, int, int]]
    logins: dict[str, int]
    open_alerts: list[Alert]
    generated_at: float = field(default_factory=time.time)
    changes: timeline.Timeline = field(default_factory=timeline.Timeline)


def _per_minute(buckets: Buckets, start: float, bucket_s: int,
                value: Callable[[dict[str, float]], tuple[float, float]]) -> list[tuple[float, float]]:
    """Sum (numerator, denominator) pairs of each minute of the hour from `start`."""
    minutes = [(0.0, 0.0)] * MINUTES
    for bucket, fields in buckets.items():
        index = int((bucket * bucket_s - start) // 60)
        if 0 <= index < MINUTES:
            a, b = value(fields)
            minutes[index] = (minutes[index][0] + a, minutes[index][1] + b)
    return minutes


def _max_per_minute(buckets: Buckets, start: float, bucket_s: int, name: str) -> list[float | None]:
    minutes: list[float | None] = [None] * MINUTES
    for bucket, fields in buckets.items():
        index = int((bucket * bucket_s - start) // 60)
        if 0 <= index < MINUTES and name in fields:
            current = minutes[index]
            minutes[index] = fields[name] if current is None else max(current, fields[name])
    return minutes


def _ratio(pairs: list[tuple[float, float]]) -> list[float | None]:
    return [a / b if b else None for a, b in pairs]


X_LABELS = [(0, "−60 min"), (30, "−30 min"), (59, "now")]


def version_charts(buckets: Buckets, start: float, bucket_s: int,
                   memory_cap: float | None) -> list[charts.Chart]:
    """Calls and faults per minute, fuel per call and peak memory per call over the hour."""
    calls = [c for c, _ in _per_minute(buckets, start, bucket_s,
                                       lambda f: (f.get("calls", 0.0), 1.0))]
    faults = [c for c, _ in _per_minute(buckets, start, bucket_s, lambda f: (
        sum(v for k, v in f.items() if k.startswith("f_") and k[2:] not in NOT_FAULTS), 1.0))]
    if not any(calls):  # no line at all, rather than a flat zero, for a version nobody calls
        calls = faults = [None] * MINUTES  # type: ignore[list-item]
    fuel_avg = _ratio(_per_minute(buckets, start, bucket_s, lambda f: (
        f.get("fuel", 0.0), f.get("calls", 0.0) if "fuel" in f else 0.0)))
    memory_avg = _ratio(_per_minute(buckets, start, bucket_s, lambda f: (
        f.get("mem", 0.0), f.get("calls", 0.0) if "mem" in f else 0.0)))
    return [
        charts.line_chart("calls", "Calls and faults per minute",
                          [("calls", "series-calls", calls), ("faults", "series-faults", faults)],
                          X_LABELS, charts.count),
        charts.line_chart("fuel", "Fuel per call",
                          [("average", "series-avg", fuel_avg),
                           ("max", "series-max", _max_per_minute(buckets, start, bucket_s, "fuel_max"))],
                          X_LABELS, charts.fuel),
        charts.line_chart("memory", "Peak memory per call",
                          [("average", "series-avg", memory_avg),
                           ("max", "series-max", _max_per_minute(buckets, start, bucket_s, "mem_max"))],
                          X_LABELS, charts.size, cap=memory_cap, cap_label="cap"),
    ]


def _version_health(plugin_id: str, version: str, role: str, row: PluginVersion | None,
                    buckets: Buckets, wall: float, bucket_s: int) -> VersionHealth:
    recent = int((wall - RECENT_S) // bucket_s)
    calls = series.total(buckets, "calls", recent)
    faults = fault_counts(buckets, recent)
    measured = series.total(buckets, "mem", recent) > 0 or series.total(buckets, "fuel", recent) > 0
    cap = series.peak(buckets, "mem_cap_max") or None
    start = wall - HOUR_S
    return VersionHealth(
        plugin_id=plugin_id, version=version, role=role,
        quarantined_at=row.quarantined_at if row is not None else None,
        quarantine_reason=row.quarantine_reason if row is not None else None,
        calls_per_min=calls / (RECENT_S / 60),
        calls_hour=int(series.total(buckets, "calls")),
        faults=faults,
        fault_rate=sum(faults.values()) / calls if calls else None,
        p50_ms=series.percentile_ms(buckets, 0.5, recent),
        p95_ms=series.percentile_ms(buckets, 0.95, recent),
        fuel_per_call=series.total(buckets, "fuel", recent) / calls if calls and measured else None,
        memory_peak=series.peak(buckets, "mem_max", recent) or None,
        memory_cap=cap,
        host_calls=int(series.total(buckets, "hc", recent)),
        host_errors=int(series.total(buckets, "hc_err", recent)),
        charts=version_charts(buckets, start, bucket_s, cap),
    )


def _roles(install: PluginInstall | None) -> dict[str, str]:
    if install is None:
        return {}
    roles = {install.version: "current"}
    if install.canary_version:
        roles[install.canary_version] = f"canary {install.canary_percent} %"
    if install.previous_version and install.previous_version not in roles:
        roles[install.previous_version] = "previous (rollback target)"
    return roles


def _role_rank(role: str) -> int:
    """Current first, then the canary, the rollback target, and versions nobody is served."""
    for rank, prefix in enumerate(("current", "canary", "previous")):
        if role.startswith(prefix):
            return rank
    return 3


def plugins(session: Session, monitor: Monitor, wall: float) -> list[PluginHealth]:
    store, bucket_s = monitor.store, monitor.settings.bucket_s
    installs = {i.plugin_id: i for i in session.scalars(select(PluginInstall))}
    rows = {(r.plugin_id, r.version): r for r in session.scalars(
        select(PluginVersion).options(load_only(
            PluginVersion.plugin_id, PluginVersion.version, PluginVersion.quarantined_at,
            PluginVersion.quarantine_reason)))}
    seen = [series.parse_plugin_series(s) for s in store.series("p|", wall)]
    wanted: dict[str, set[str]] = {}
    for plugin_id, current in installs.items():
        wanted.setdefault(plugin_id, set()).update(_roles(current))
    for plugin_id, version in seen:
        wanted.setdefault(plugin_id, set()).add(version)
    for (plugin_id, version), row in rows.items():
        if row.quarantined_at is not None and plugin_id in wanted:
            wanted[plugin_id].add(version)
    data = store.read([series.plugin_series(p, v) for p, vs in wanted.items() for v in vs],
                      wall - HOUR_S, wall)
    found = []
    for plugin_id in sorted(wanted):
        install = installs.get(plugin_id)
        roles = _roles(install)
        versions = [
            _version_health(plugin_id, v, roles.get(v, "not served"), rows.get((plugin_id, v)),
                            data.get(series.plugin_series(plugin_id, v), {}), wall, bucket_s)
            for v in wanted[plugin_id]]
        versions.sort(key=lambda h: (_role_rank(h.role), -h.calls_hour, h.version))
        found.append(PluginHealth(
            plugin_id, install.enabled if install else None, install.version if install else None,
            install.canary_version if install else None, install.canary_percent if install else 0,
            install.previous_version if install else None, versions))
    return found


def workers(monitor: Monitor, wall: float) -> list[WorkerHealth]:
    import os

    found = []
    for worker_id, info in monitor.store.workers(wall).items():
        found.append(WorkerHealth(
            worker_id=worker_id, pid=int(info.get("pid", 0)), host=str(info.get("host", "")),
            rss=float(info.get("rss", 0)), cpu_percent=float(info.get("cpu_ratio", 0)) * 100,
            uptime_s=wall - float(info.get("started", wall)),
            seen_s_ago=max(0.0, wall - float(info.get("last_seen", wall))),
            this_worker=info.get("pid") == os.getpid() and info.get("host") == monitor.hostname))
    return sorted(found, key=lambda w: (w.host, w.pid))


def database_status(session: Session) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        session.rollback()
        return {"ok": False, "detail": type(exc).__name__}
    return {"ok": True, "detail": f"{(time.perf_counter() - started) * 1000:.1f} ms",
            "dialect": session.get_bind().dialect.name}


def build(session: Session, monitor: Monitor, redis: Any | None) -> Dashboard:
    """Everything /admin/health shows (this worker's pending counts flushed first)."""
    from cms.redis_client import ping

    wall = time.time()
    monitor.sample_worker(wall, force=True)
    monitor.flush(wall)
    recent = wall - RECENT_S
    capabilities = monitor.store.series("h|", wall)
    host_data = monitor.store.read(capabilities, recent, wall)
    host_calls = sorted(((name.split("|", 1)[1], int(series.total(b, "calls")),
                          int(series.total(b, "err"))) for name, b in host_data.items()),
                        key=lambda row: (-row[2], -row[1], row[0]))
    logins = monitor.store.read([series.LOGINS], recent, wall)[series.LOGINS]
    redis_ok, redis_detail = ping(redis)
    return Dashboard(
        plugins=plugins(session, monitor, wall),
        workers=workers(monitor, wall),
        database=database_status(session),
        redis={"configured": redis is not None, "ok": redis_ok, "detail": redis_detail},
        backend=monitor.store.backend,
        host_calls=host_calls,
        logins={k: int(series.total(logins, k)) for k in ("success", "failure", "throttled")},
        open_alerts=alerts.open_alerts(session),
        generated_at=wall,
        changes=timeline.build(session, datetime.fromtimestamp(wall, timezone.utc),
                               monitor.store.workers(wall)),
    )
