"""From what one replay run left behind (the load's request log, Gunicorn's access and error logs,
RSS samples, the database's quarantine and alert times) to its figures. Pure functions."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

#: Gunicorn's own log lines: "[2026-11-24 15:20:01 +0000] [123] [INFO] Booting worker ...".
_GUNICORN_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ([+-]\d{4})\] \[\d+\] \[(\w+)\] (.*)$",
                            re.M)


@dataclass(frozen=True)
class Row:
    """One line of the load's request log: an HTTP request, or a login attempt as a whole."""

    kind: str
    start: float
    ms: float
    name: str
    status: int
    ok: bool
    error: str


@dataclass
class Phases:
    """Epoch seconds: load started, warm-up over (baseline starts), release, load ended."""

    start: float
    warmup_end: float
    release: float
    end: float

    def of_row(self, row: "Row") -> str | None:
        """The phase in which a request was answered (or given up on)."""
        return self.of(row.start + row.ms / 1000)

    def of(self, t: float) -> str | None:
        if self.warmup_end <= t < self.release:
            return "baseline"
        if self.release <= t <= self.end:
            return "faulty"
        return None


@dataclass
class ServerEvents:
    """Worker events in Gunicorn's log, each (epoch s, text)."""

    boots: list[float] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    exits: list[float] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)
    autorestarts: int = 0
    #: Plugin faults the sandbox caught (the runtime logs each): (epoch s, "plugin version", kind).
    plugin_faults: list[tuple[float, str, str]] = field(default_factory=list)


_PLUGIN_FAULT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) WARNING \S+: plugin fault "
                           r"kind=(\S+) plugin=(\S+) version=(\S+)", re.M)


def read_rows(path: Path) -> list[Row]:
    rows = []
    if not path.exists():
        return rows
    with open(path, newline="") as handle:
        for fields in csv.reader(handle):
            if len(fields) < 6:
                continue
            kind, start, ms, name, status, ok = fields[:6]
            rows.append(Row(kind, float(start), float(ms), name, int(status or 0), ok == "1",
                            fields[6] if len(fields) > 6 else ""))
    rows.sort(key=lambda r: r.start)
    return rows


def answered_in_access_log(path: Path | None, user_agent: str) -> int:
    """Requests of the load (by user agent) that the server logged as answered."""
    if path is None or not path.exists():
        return 0
    needle = f'ua="{user_agent}"'
    with open(path, errors="replace") as handle:
        return sum(1 for line in handle if needle in line)


def server_events(log_text: str) -> ServerEvents:
    events = ServerEvents()
    for stamp, zone, _level, message in _GUNICORN_LINE.findall(log_text):
        t = datetime.strptime(f"{stamp} {zone}", "%Y-%m-%d %H:%M:%S %z").timestamp()
        if message.startswith("Booting worker"):
            events.boots.append(t)
        elif "WORKER TIMEOUT" in message:
            events.timeouts.append(t)
        elif message.startswith("Worker exiting"):
            events.exits.append(t)
        elif "was sent SIGKILL" in message or "exited with code" in message:
            events.kills.append(t)
        elif message.startswith("Autorestarting worker"):
            events.autorestarts += 1
    for stamp, millis, kind, plugin_id, version in _PLUGIN_FAULT.findall(log_text):
        # The app logs local time (logging's asctime).
        t = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp() + int(millis) / 1000
        events.plugin_faults.append((t, f"{plugin_id} {version}", kind))
    return events


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def is_server_error(row: Row) -> bool:
    """No answer (timeout, reset, refused) or a 5xx that is not a plugin's 503 fault answer."""
    return row.kind == "http" and (row.status == 0 or (row.status >= 500 and row.status != 503))


def rss_growth(samples: list[tuple[float, int, float]], release: float, end: float,
               window_s: float = 15.0) -> dict[str, Any]:
    """Per worker alive at the release: its RSS floor (the smallest sample) in the `window_s`
    before the release and in the last `window_s` of its life before `end`; the largest growth
    and the peak. The floor, because every login's argon2 hash holds 19 MiB for a moment: a
    sample taken during a login says nothing about a leak. Workers started after the release
    (replacing killed ones) are listed but not counted: their growth is loading the app."""
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for t, pid, mib in samples:
        if t <= end:
            by_pid.setdefault(pid, []).append((t, mib))
    workers = {}
    for pid, points in by_pid.items():
        after = [(t, m) for t, m in points if t >= release]
        if not after:
            continue
        before = [m for t, m in points if release - window_s <= t < release]
        born_later = not any(t < release for t, _ in points)
        if born_later:
            before = [m for t, m in after if t < after[0][0] + window_s]
        last = [m for t, m in after if t >= after[-1][0] - window_s]
        if not before:
            continue
        workers[pid] = {"from_mib": round(min(before), 1), "to_mib": round(min(last), 1),
                        "growth_mib": round(min(last) - min(before), 1),
                        "peak_mib": round(max(m for _, m in points), 1),
                        "born_after_release": born_later}
    growth = max((w["growth_mib"] for w in workers.values() if not w["born_after_release"]),
                 default=None)
    peak = max((w["peak_mib"] for w in workers.values()), default=None)
    return {"workers": workers, "growth_mib": growth, "peak_mib": peak}


def phase_stats(rows: list[Row], phases: Phases) -> dict[str, dict[str, Any]]:
    """Baseline and faulty phase: see `window_stats`."""
    return {"baseline": window_stats(rows, phases.warmup_end, phases.release),
            "faulty": window_stats(rows, phases.release, phases.end)}


def window_stats(rows: list[Row], start: float, end: float) -> dict[str, Any]:
    """Requests and login attempts answered (or given up on) in [start, end): requests, server
    errors, timeouts, plugin-fault answers, request p50/p99, logins, failed logins, login
    p50/p99/max (ms)."""
    rows_in = [r for r in rows if start <= r.start + r.ms / 1000 < end]
    http = [r for r in rows_in if r.kind == "http"]
    logins = [r for r in rows_in if r.kind == "login"]
    span = end - start
    return {
        "seconds": round(span, 1),
        "requests": len(http),
        "requests_per_s": round(len(http) / span, 1) if span > 0 else None,
        "server_errors": sum(is_server_error(r) for r in http),
        "timeouts": sum("Timeout" in r.error or "timed out" in r.error for r in http),
        "plugin_fault_answers": sum(r.status in (403, 503) and "/api/plugins/" in r.name
                                    for r in http),
        "request_p50_ms": _round(percentile([r.ms for r in http], 50)),
        "request_p99_ms": _round(percentile([r.ms for r in http], 99)),
        "logins": len(logins),
        "failed_logins": sum(not r.ok for r in logins),
        "login_p50_ms": _round(percentile([r.ms for r in logins if r.ok], 50)),
        "login_p99_ms": _round(percentile([r.ms for r in logins if r.ok], 99)),
        "login_max_ms": _round(max((r.ms for r in logins if r.ok), default=None)),
    }


def _count_by(faults: list[tuple[float, str, str]], since: float) -> dict[str, dict[str, int]]:
    """Faults after `since` by version and kind."""
    out: dict[str, dict[str, int]] = {}
    for t, version, kind in faults:
        if t >= since - 1:
            out.setdefault(version, {}).setdefault(kind, 0)
            out[version][kind] += 1
    return out


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def bins(rows: Iterable[Row], start: float, width: float) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = {}
    for row in rows:
        grouped.setdefault(int((row.start - start) // width), []).append(row)
    return grouped


def summarize(rows: list[Row], phases: Phases, answered: int, events: ServerEvents,
              workers: int, samples: list[tuple[float, int, float]]) -> dict[str, Any]:
    """The figures of one run (sandboxed or control)."""
    http = [r for r in rows if r.kind == "http"]
    logins = [r for r in rows if r.kind == "login"]
    stats = phase_stats(rows, phases)
    base, faulty = stats["baseline"]["login_p99_ms"], stats["faulty"]["login_p99_ms"]
    rss = rss_growth(samples, phases.release, phases.end)
    return {
        "failed_logins": sum(not r.ok for r in logins),
        "login_attempts": len(logins),
        "worker_deaths": max(0, len(events.boots) - workers - events.autorestarts),
        "worker_timeouts": len(events.timeouts),
        "requests_sent": len(http),
        "requests_answered": answered,
        "requests_lost": len(http) - answered,
        "server_errors": sum(is_server_error(r) for r in http),
        "p99_login_ratio": round(faulty / base, 2) if base and faulty else None,
        "rss_growth_mb": rss["growth_mib"],
        "rss_peak_mb": rss["peak_mib"],
        "rss_workers": rss["workers"],
        "plugin_faults_caught": _count_by(events.plugin_faults, phases.release),
        "phases": stats,
    }
