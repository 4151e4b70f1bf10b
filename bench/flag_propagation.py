"""Flag propagation benchmark: from `PUT /api/admin/flags/<key>` on instance A until every worker
of instance B serves the new value, over real Gunicorn instances sharing PostgreSQL.

    .venv/bin/python bench/flag_propagation.py [--changes 50] [--json] [--write]

It prepares the PostgreSQL database `cms_flag_bench` (migrated, plugins installed, a small seed),
then runs twice: with a Redis of its own (pub/sub, the normal path) and without Redis (each
worker's database poll alone). Each run starts instances A and B on 127.0.0.1 (the project's
gunicorn.conf.py, 2 workers each), logs an agent in on B, and keeps three probes asking B for
the terminal's `screen` action (POST /api/plugins/terminal/actions/screen), which answers 200
while the kill switch `plugin.terminal` is on and 404 once it is off. Every probe carries an id that B's access log writes next to the worker's pid, so
each answer is tied to the worker that gave it. For each of --changes flips (on/off in turn)
the time is from just before the PUT to A until the first answer with the new value from every
one of B's workers (an upper bound: a worker may have applied it up to one probe earlier).
Prints p50/p99/max per path; --write replaces its block of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import re
import secrets
import shlex
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent / "replay"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import database  # noqa: E402  (bench/ is not a package: sibling modules by path)
from bench_report import load_average, machine, replace_block  # noqa: E402
from servers import REPO, Server, gunicorn, log, redis_server, worker_pids  # noqa: E402

DEFAULT_DATABASE = "postgresql://127.0.0.1/cms_flag_bench"
PASSWORD = "demo-travel-2026"
KEY = "plugin.terminal"
PROBE_PATH = "/api/plugins/terminal/actions/screen"
WORKERS = 2
PROBES = 3
DOC = REPO / "docs" / "benchmarks.md"
BLOCK_BEGIN = "<!-- bench/flag_propagation.py --write: begin (generated; replaced on every --write) -->"
BLOCK_END = "<!-- bench/flag_propagation.py --write: end -->"
_PROBE_LINE = re.compile(r" pid=<?(\d+)>? probe=(\d+) ")


class Prober:
    """Threads asking B for the probe page as a logged-in agent, each answer recorded as
    (probe id, sent, received, status); bounded by `limit_s`."""

    def __init__(self, port: int, cookie: str, csrf: str, limit_s: float) -> None:
        self.port, self.cookie, self.csrf, self.limit_s = port, cookie, csrf, limit_s
        self.answers: dict[int, tuple[float, float, int]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(PROBES)]

    def __enter__(self) -> "Prober":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _loop(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                probe = next(self._ids)
            sent = time.time()
            status = 0
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("POST", PROBE_PATH, body="{}", headers={
                    "Cookie": self.cookie, "X-CSRFToken": self.csrf, "X-Probe": str(probe),
                    "Content-Type": "application/json", "User-Agent": "cms-flag-bench"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                time.sleep(0.05)
            finally:
                conn.close()
            with self._lock:
                self.answers[probe] = (sent, time.time(), status)


class AccessLog:
    """B's access log, read as it grows: probe id -> worker pid."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.pid_of = path, 0, {}

    def refresh(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, errors="replace") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
            self.offset = handle.tell()
        for pid, probe in _PROBE_LINE.findall(chunk):
            self.pid_of[int(probe)] = int(pid)


def csrf_token(port: int, cookie: str) -> tuple[str, str]:
    """(the session cookie as the page left it, the page's CSRF token)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/clients", headers={"Cookie": cookie})
    response = conn.getresponse()
    page = response.read().decode()
    updated = re.search(r"(cms_session=[^;]+)", response.getheader("Set-Cookie") or "")
    conn.close()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if not token:
        raise RuntimeError("no CSRF token on B's /clients")
    return (updated.group(1) if updated else cookie), token.group(1)


def login_cookie(port: int, username: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = re.search(r"(cms_session=[^;]+)", response.getheader("Set-Cookie") or "")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    conn.close()
    if not cookie or not token:
        raise RuntimeError("no login form on B")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = (f"csrf_token={quote_plus(token.group(1))}&username={quote_plus(username)}"
            f"&password={quote_plus(PASSWORD)}")
    conn.request("POST", "/login", body=body, headers={
        "Cookie": cookie.group(1), "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    session = re.search(r"(cms_session=[^;]+)", response.getheader("Set-Cookie") or "")
    conn.close()
    if response.status != 302 or not session:
        raise RuntimeError(f"login on B failed ({response.status})")
    return session.group(1)


def put_flag(server: Server, token: str, enabled: bool) -> None:
    request = urllib.request.Request(
        f"{server.base}/api/admin/flags/{KEY}", method="PUT",
        data=json.dumps({"enabled": enabled, "rollout_percent": 100,
                         "reason": "flag propagation benchmark"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        if answer.status != 200:
            raise RuntimeError(f"PUT {KEY} answered {answer.status}")


def measure(name: str, env: dict[str, str], work_dir: Path, token: str, changes: int,
            per_change_limit_s: float) -> tuple[list[float | None], list[float]]:
    """Propagation times (s) of `changes` flips (None where B had not caught up in time), and
    the probes' round trips (s)."""
    times: list[float | None] = []
    with gunicorn(f"{name}-a", work_dir, env, WORKERS, access_log=False) as a, \
            gunicorn(f"{name}-b", work_dir, env, WORKERS) as b:
        assert b.access_log is not None
        put_flag(a, token, True)
        time.sleep(3)  # every watcher has started and read the current version
        pids = set(worker_pids(b.process.pid))
        access = AccessLog(b.access_log)
        cookie = login_cookie(b.port, "demo.agent")
        enabled = True
        limit = changes * (per_change_limit_s + 1) + 30
        with Prober(b.port, *csrf_token(b.port, cookie), limit) as prober:
            time.sleep(1)
            for number in range(changes):
                enabled = not enabled
                want = 200 if enabled else 404
                started = time.time()
                put_flag(a, token, enabled)
                seen: dict[int, float] = {}
                deadline = time.monotonic() + per_change_limit_s
                while time.monotonic() < deadline and set(seen) < pids:
                    time.sleep(0.02)
                    access.refresh()
                    with prober._lock:
                        answers = list(prober.answers.items())
                    for probe, (sent, received, status) in answers:
                        pid = access.pid_of.get(probe)
                        if pid is not None and sent >= started and status == want:
                            seen[pid] = min(seen.get(pid, received), received)
                took = max(seen.values()) - started if set(seen) >= pids else None
                times.append(took)
                if number % 10 == 9:
                    log(f"{name}: {number + 1}/{changes} changes")
                # The next change lands at a random point of the workers' 2 s poll cycle.
                time.sleep(random.uniform(0.05, 0.3) if "CMS_REDIS_URL" in env
                           else random.uniform(0.0, 2.0))
        round_trips = [received - sent for sent, received, status in prober.answers.values()
                       if status in (200, 404)]
    return times, round_trips


def summary(measured: tuple[list[float | None], list[float]]) -> dict[str, Any]:
    times, round_trips = measured
    done = sorted(t for t in times if t is not None)

    def pct(q: float) -> float | None:
        return round(done[min(len(done) - 1, max(0, int(q * len(done) + 0.999) - 1))] * 1000, 1) \
            if done else None
    return {"changes": len(times), "caught_up": len(done), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": round(done[-1] * 1000, 1) if done else None,
            "mean_ms": round(sum(done) / len(done) * 1000, 1) if done else None,
            "probe_p50_ms": round(sorted(round_trips)[len(round_trips) // 2] * 1000, 1)
            if round_trips else None}


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| path | changes | all of B's workers caught up | p50 ms | p99 ms | max ms | mean ms | "
             "probe round trip p50 ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    labels = {"redis": "Redis pub/sub (+ DB poll)", "db": "database poll only (no Redis)"}
    for name, s in results.items():
        lines.append(f"| {labels[name]} | {s['changes']} | {s['caught_up']} | {s['p50_ms']} | "
                     f"{s['p99_ms']} | {s['max_ms']} | {s['mean_ms']} | {s['probe_p50_ms']} |")
    return "\n".join(lines)


def block(results: dict[str, dict[str, Any]], command: str, load_before: str) -> str:
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    redis, db = results.get("redis"), results.get("db")
    ratio = (f"- database poll / Redis, p50: **{db['p50_ms'] / redis['p50_ms']:.0f}x** "
             f"(p99 {db['p99_ms'] / redis['p99_ms']:.0f}x)\n"
             if redis and db and redis["p50_ms"] and db["p50_ms"] and redis["p99_ms"] else "")
    return f"""{BLOCK_BEGIN}

## Flag propagation

Written by `bench/flag_propagation.py --write` from a real run.

- Date: {today}
- Command: `{command}`
- Machine: {machine()}
- Load average (1, 5, 15 min): {load_before} before the run, {load_average()} after
- Set-up: two Gunicorn instances (the project's `gunicorn.conf.py`, {WORKERS} sync workers each) \
on one PostgreSQL database, 127.0.0.1; {PROBES} probes keep asking B for `{PROBE_PATH}` as an \
agent; the kill switch `{KEY}` flips on and off through `PUT /api/admin/flags/{KEY}` on A
- Measured: from just before the PUT to the first answer with the new value from every worker of \
B (each answer tied to its worker through the access log); an upper bound by up to one probe

{table(results)}

{ratio}- The database poll runs every 2 s per worker; with Redis the PUT's publish wakes every \
watcher at once.

{BLOCK_END}
"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=50, help="flips per path (default 50)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--only", choices=["redis", "db"], help="measure one path only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", action="store_true", help="replace the block in docs/benchmarks.md")
    args = parser.parse_args(argv)
    if not 1 <= args.changes <= 1000:
        parser.error("--changes is 1 to 1000")
    signal.signal(signal.SIGTERM, _interrupt)
    command = shlex.join([".venv/bin/python", "bench/flag_propagation.py",
                          *(argv if argv is not None else sys.argv[1:])])
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="cms-flag-bench-") as tmp:
        work_dir = Path(tmp)
        env = {**os.environ, "CMS_DATABASE_URL": args.database_url, "CMS_ENV": "production",
               "CMS_SECRET_KEY": secrets.token_urlsafe(32), "CMS_SECURE_COOKIES": "false",
               "CMS_INSTANCE_PATH": str(database.artifact_dir_for(args.database_url,
                                                                   Path(tempfile.gettempdir()))),
               "CMS_DEMO_PASSWORD": PASSWORD, "HOST": "127.0.0.1", "PYTHONPATH": str(REPO)}
        env.pop("CMS_REDIS_URL", None)
        _, token = database.prepare(args.database_url, env, 2, 1, 5, PASSWORD)
        results: dict[str, dict[str, Any]] = {}
        if args.only in (None, "redis"):
            with redis_server(work_dir) as redis_url:
                results["redis"] = summary(measure("redis", {**env, "CMS_REDIS_URL": redis_url},
                                                   work_dir, token, args.changes, 10))
        if args.only in (None, "db"):
            results["db"] = summary(measure("db", env, work_dir, token, args.changes, 15))
    if args.json:
        print(json.dumps(results))
    else:
        print(table(results))
    if args.write:
        replace_block(DOC, BLOCK_BEGIN, BLOCK_END, block(results, command, load_before))
        log(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        sys.exit(130)
