"""Formatting of benchmark results: the Markdown table, the goals, and docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import platform
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

DASHBOARD_RATIO_GOAL = 0.4
SEARCH_P95_GOAL_MS = 50.0


@dataclass
class Result:
    """One wrk run: `key` is hello, login, dashboard or search."""

    key: str
    name: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)
    memory = f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB RAM" if mem else "unknown RAM"
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
            f"{model.group(1).strip() if model else platform.processor() or 'unknown CPU'}, "
            f"{memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}")


def table(results: list[Result]) -> str:
    lines = ["| endpoint | requests/s | p50 ms | p95 ms | p99 ms | errors |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.rps:.1f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | "
                     f"{r.p99_ms:.1f} | {r.errors} |")
    return "\n".join(lines)


def ratios(results: list[Result]) -> str:
    """The two goals: dashboard throughput relative to the bare app, and search latency."""
    by_key = {r.key: r for r in results}
    hello, dashboard, search = by_key["hello"], by_key["dashboard"], by_key["search"]
    ratio = dashboard.rps / hello.rps if hello.rps else 0.0
    return "\n".join([
        f"- dashboard / hello requests per second: **{ratio:.2f}** "
        f"(goal >= {DASHBOARD_RATIO_GOAL}: {'met' if ratio >= DASHBOARD_RATIO_GOAL else 'NOT met'})",
        f"- client search p95: **{search.p95_ms:.1f} ms** (goal < {SEARCH_P95_GOAL_MS:.0f} ms: "
        f"{'met' if search.p95_ms < SEARCH_P95_GOAL_MS else 'NOT met'})",
    ])


def argon2_parameters() -> str:
    """The parameters the CMS hashes new passwords with (cms.auth.passwords)."""
    from cms.auth.passwords import OWASP_MINIMUM as p

    return (f"argon2id, time_cost={p.time_cost}, memory_cost={p.memory_cost} KiB, "
            f"parallelism={p.parallelism}")


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


KEPT_MARKER = "<!-- Everything below this line is hand-written and kept by --write. -->"


def document(results: list[Result], args: argparse.Namespace, command: str,
             seed_command: str | None, search_terms: list[str], load_before: str) -> str:
    """The generated part of docs/benchmarks.md (up to and including KEPT_MARKER)."""
    engine = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    max_requests = ("the project's default (20,000 + 10 % jitter; GUNICORN_MAX_REQUESTS unset)"
                    if args.max_requests is None else f"{args.max_requests} (0: never)")
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    seeded = (f"seeded for this run with `{seed_command}`" if seed_command else
              "already seeded (`flask --app cms seed --agencies "
              f"{args.agencies} --agents {args.agents} --clients {args.clients}`)")
    prefixes = ", ".join(f"`{t}`" for t in search_terms)
    return f"""# HTTP benchmarks

The first part of this page is written by `bench/http_bench.py --write` from a real run.

- Date: {today}
- Command: `{command}`
- Machine: {machine()}
- Load average (1, 5, 15 min): {load_before} before the run, {load_average()} after
- Database: {engine} `{args.database_url}`, {args.agents:,} agents in {args.agencies} agencies, \
{args.clients:,} clients with about 1.5 bookings each; {seeded}
- Servers: Gunicorn with the project's `gunicorn.conf.py` (access log off), {args.workers} sync \
workers, for both the CMS and `bench/hello_app.py` (a bare Flask app returning a string); \
max_requests: {max_requests}
- Load: wrk, {args.threads} threads, {args.connections} connections, {args.duration} s per \
endpoint after a {args.warmup} s warm-up, all on 127.0.0.1 (wrk shares the CPUs with the servers)

{table(results)}

{ratios(results)}

- POST /login rotates over the seeded agents with one anonymous cookie and CSRF token; each login \
verifies an argon2 hash ({argon2_parameters()}), opens a server-side session and writes an audit \
event, so its cost is argon2's, by design.
- GET / is the dashboard of `agent00001`; GET /clients?q= rotates over {prefixes}.
- Errors: socket errors plus responses with an unexpected status (200; 302 for login).

{KEPT_MARKER}
"""


def with_kept_notes(generated: str, previous: str | None) -> str:
    """`generated` followed by the hand-written part of `previous` (after KEPT_MARKER), if any."""
    if previous and KEPT_MARKER in previous:
        kept = previous.split(KEPT_MARKER, 1)[1].lstrip("\n")
        return f"{generated}\n{kept}"
    return generated


def replace_block(path: Path, begin: str, end: str, block: str) -> None:
    """Write `block` (which starts with `begin` and ends with `end`) in place of the generated
    block between those markers in `path`, or append it at the end. Everything else is kept, so
    each benchmark rewrites only its own block."""
    previous = path.read_text() if path.exists() else ""
    if begin in previous and end in previous:
        head, rest = previous.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = f"{head}{block}" + (f"\n{tail}" if tail else "")
    else:
        text = f"{previous.rstrip()}\n\n{block}" if previous.strip() else block
    path.write_text(text)
