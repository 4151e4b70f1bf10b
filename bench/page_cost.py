"""What plugins cost an agent's page, and how fast the 7:30 shift logs in (issue 13).

    .venv/bin/python bench/page_cost.py [--duration 8] [--rounds 3] [--storm 200] [--json] [--write]

One run, on the PostgreSQL database `cms_bench` (12,000 agents, 100,000 clients; created, seeded
and given the bundled plugins when needed) with a Redis of its own:

1. In-process (Flask test client): SQL statements per page (a SQLAlchemy event listener) and p50
   of the client page, the dashboard and two plugin actions through the JSON API, with the three
   bundled plugins on and with the kill switch `plugins.all` off, in alternating rounds.
2. A spinning panel (in-process, a temporary SQLite app): the client page with and without a
   plugin whose panel spins to its deadline; what it adds is compared with the panel budget.
3. Gunicorn (the project's gunicorn.conf.py) with wrk: the same pages and the terminal action,
   plugins on and `plugins.all` off in alternating rounds (every worker shown to have applied the
   switch before a round); the on / off throughput ratio is the goal (>= 0.9).
4. A login storm: N agents GET the form, then all POST it at once; logins/s and p95, against the
   same CMS with the argon2id parameters it had before (bench/legacy_passwords_app.py), same run.

With --json, one JSON object on stdout; with --write, its block of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrk_scripts  # noqa: E402  (sibling modules; bench/ is not a package)
from bench_report import load_average, machine, replace_block  # noqa: E402
from http_bench import (  # noqa: E402
    DEFAULT_DATABASE,
    DEFAULT_PASSWORD,
    logged_in_cookie,
    prepare_database,
    wrk,
)
from replay.servers import gunicorn, redis_server  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.conftest import csrf_from  # noqa: E402  (the tests' own reading of a form)
DOC = REPO / "docs" / "benchmarks.md"
BLOCK_BEGIN = "<!-- bench/page_cost.py --write: begin (generated; replaced on every --write) -->"
BLOCK_END = "<!-- bench/page_cost.py --write: end -->"
AGENT = "agent00001"
GOAL_RATIO = 0.9
GOAL_EXTRA_STATEMENTS = 2
GOAL_ACTION_P50_MS = 3.0
GOAL_LOGIN_SPEEDUP = 4.0
SPIN_DEADLINE_MS = 1000


def log(message: str) -> None:
    print(f"[page-cost] {message}", file=sys.stderr, flush=True)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999) - 1))]


def terminal_command() -> str:
    """An availability request (`AN`) for a day the demo flight inventory covers."""
    day = date.today() + timedelta(days=10)
    return f"AN{day.day:02d}{day.strftime('%b').upper()}JFKLHR"


# --- 1. in-process ------------------------------------------------------------------------------

class InProcess:
    """The CMS app of this process on the bench database, logged in as one seeded agent."""

    def __init__(self, password: str) -> None:
        from sqlalchemy import text

        from cms import create_app
        from cms.extensions import db

        self.app = create_app()
        self.db = db
        self.browser = self.app.test_client()
        form = self.browser.get("/login").get_data(as_text=True)
        answer = self.browser.post("/login", data={"username": AGENT, "password": password,
                                                   "csrf_token": csrf_from(form)})
        if answer.status_code != 302:
            raise RuntimeError(f"in-process login as {AGENT} gave {answer.status_code}")
        with self.app.app_context():
            # The agent's busiest client: the most bookings, so an N+1 would show.
            self.client_id = int(db.session.scalar(text(
                "SELECT c.id FROM clients c JOIN users u ON u.agency_id = c.agency_id "
                "LEFT JOIN bookings b ON b.client_id = c.id WHERE u.username = :agent "
                "GROUP BY c.id ORDER BY count(b.id) DESC, c.id LIMIT 1"), {"agent": AGENT}))
        self.token = csrf_from(self.browser.get("/clients").get_data(as_text=True))
        self.pages = {"client_page": f"/clients/{self.client_id}", "dashboard": "/"}
        self.actions = {
            "terminal_command": ("terminal", "command", {"command": terminal_command()}),
            "softphone_client_panel": ("softphone", "client_panel", {}),
        }

    def set_plugins(self, on: bool) -> None:
        from cms.app_state import state
        from cms.audit import Actor
        from cms.flags import set_flag

        with self.app.app_context():
            set_flag(self.db.session, Actor(None, "page-cost bench", None), "plugins.all",
                     enabled=on, reason="page cost benchmark", notify=state().flags.changed)
            self.db.session.remove()

    def get(self, path: str) -> tuple[int, str]:
        response = self.browser.get(path)
        return response.status_code, response.get_data(as_text=True)

    def act(self, name: str) -> tuple[int, dict[str, Any]]:
        plugin, action, params = self.actions[name]
        response = self.browser.post(f"/api/plugins/{plugin}/actions/{action}", json=params,
                                     query_string={"client_id": self.client_id},
                                     headers={"X-CSRFToken": self.token})
        return response.status_code, response.get_json(silent=True) or {}

    def timed(self, call: Callable[[], Any], count: int) -> list[float]:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return times

    def check(self, on: bool) -> None:
        status, html = self.get(self.pages["client_page"])
        shown = "data-plugin-status=" in html
        if status != 200 or shown != on:
            raise RuntimeError(f"client page: {status}, plugins shown {shown}, expected {on}")
        if on:
            status, body = self.act("terminal_command")
            if status != 200 or not body.get("result", {}).get("flights"):
                raise RuntimeError(f"terminal availability answered {status}: {body}")


def in_process(args: argparse.Namespace) -> dict[str, Any]:
    """Statements per page and in-process p50s, plugins on and off in alternating rounds."""
    from tests.plugins.test_statement_budget import statements  # the tests' own listener

    bench = InProcess(args.password)
    result: dict[str, Any] = {"client_id": bench.client_id, "statements": {}, "p50_ms": {}}
    times: dict[str, dict[bool, list[float]]] = {}
    for number in range(args.rounds):
        for on in ((True, False) if number % 2 == 0 else (False, True)):
            bench.set_plugins(on)
            bench.check(on)
            for page, path in bench.pages.items():
                bench.get(path)  # warm: snapshots, modules
                with statements(bench.app) as seen:
                    bench.get(path)
                result["statements"].setdefault(page, {})["on" if on else "off"] = len(seen)
                times.setdefault(page, {True: [], False: []})[on] += bench.timed(
                    lambda: bench.get(path), args.requests)
            for name in bench.actions:
                times.setdefault(name, {True: [], False: []})[on] += bench.timed(
                    lambda: bench.act(name), args.requests)
    for name, by_state in times.items():
        result["p50_ms"][name] = {"on": round(statistics.median(by_state[True]), 2),
                                  "off": round(statistics.median(by_state[False]), 2)}
    bench.set_plugins(False)
    off_status = bench.act("terminal_command")[0]
    bench.set_plugins(True)
    result["action_off_status"] = off_status
    result["statements_extra"] = max(s["on"] - s["off"] for s in result["statements"].values())
    with bench.app.app_context():
        bench.app.extensions["cms"].plugins.close()
        bench.app.extensions["cms"].flags.close()
    return result


# --- 2. a spinning panel ------------------------------------------------------------------------

def spinning_panel(args: argparse.Namespace) -> dict[str, Any]:
    """Client page p50 with a panel that spins to its deadline, against the same page without it
    (a temporary SQLite app with the bundled plugins, the spinner toggled by its kill switch)."""
    from cms.app_state import state
    from cms.audit import Actor
    from cms.extensions import db
    from cms.flags import set_flag
    from tests import factories
    from tests.conftest import create_personas
    from tests.plugins.conftest import built, install
    from tests.plugins.test_api import make_client
    from tests.plugins.test_bundled_http import bundled_app
    from tests.plugins.test_panels import SPIN, SPINNER
    from tests.runtime import guests

    with tempfile.TemporaryDirectory(prefix="cms-page-cost-") as tmp:
        apps = bundled_app(Path(tmp))
        app = next(apps)
        try:
            personas = create_personas(app)
            manifest = SPINNER.format(id="spinner", name="Spinner").replace(
                "timeout_ms = 300", f"timeout_ms = {SPIN_DEADLINE_MS}")
            install(app, built(manifest, guests.module(handle=SPIN)))
            client_id = make_client(app, personas.agency_a_id, first_name="Ada",
                                    last_name="Lovelace")
            browser = app.test_client()
            form = browser.get("/login").get_data(as_text=True)
            browser.post("/login", data={"username": "alice.agent", "password": factories.PASSWORD,
                                         "csrf_token": csrf_from(form)})
            budget = app.config["CMS_SETTINGS"].panel_budget_ms
            url = f"/clients/{client_id}"
            times: dict[bool, list[float]] = {True: [], False: []}
            for number in range(args.rounds * 2):
                spinning = number % 2 == 0
                with app.app_context():
                    set_flag(db.session, Actor(None, "page-cost bench", None), "plugin.spinner",
                             enabled=spinning, reason="page cost benchmark",
                             notify=state().flags.changed)
                    db.session.remove()
                page = browser.get(url).get_data(as_text=True)
                if spinning != ('data-panel-src="/plugins/spinner/' in page):
                    raise RuntimeError("the spinner's placeholder is not where it should be")
                for _ in range(max(5, args.requests // 4)):
                    started = time.perf_counter()
                    response = browser.get(url)
                    times[spinning].append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"client page with the spinner: {response.status_code}")
            with app.app_context():
                set_flag(db.session, Actor(None, "page-cost bench", None), "plugin.spinner",
                         enabled=True, reason="page cost benchmark", notify=state().flags.changed)
                db.session.remove()
            started = time.perf_counter()
            deferred = browser.get(f"/plugins/spinner/panels/client.sidebar?client_id={client_id}",
                                   headers={"X-Partial": "1"})
            deferred_ms = (time.perf_counter() - started) * 1000
        finally:
            apps.close()
    with_spinner, without = statistics.median(times[True]), statistics.median(times[False])
    return {"budget_ms": budget, "deadline_ms": SPIN_DEADLINE_MS,
            "page_p50_ms": round(without, 1), "page_with_spinner_p50_ms": round(with_spinner, 1),
            "added_ms": round(with_spinner - without, 1),
            "deferred_fetch_ms": round(deferred_ms, 0), "deferred_status": deferred.status_code}


# --- 3. Gunicorn with wrk -----------------------------------------------------------------------

def request(port: int, method: str, path: str, body: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def cookie_of(headers: dict[str, str]) -> str | None:
    match = re.search(r"(cms_session=[^;]+)", headers.get("Set-Cookie", ""))
    return match.group(1) if match else None


def log_in(port: int, username: str, password: str) -> tuple[str, str]:
    """(session cookie, CSRF token of a page) of a fresh login through the form."""
    session = logged_in_cookie(port, username, password)
    status, headers, html = request(port, "GET", "/clients", headers={"Cookie": session})
    return cookie_of(headers) or session, csrf_from(html)


def wait_applied(port: int, cookie: str, path: str, on: bool, workers: int) -> None:
    """Until 3 x `workers` answers in a row show the plugins on (or off)."""
    deadline, streak = time.monotonic() + 30, 0
    while streak < 3 * workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Gunicorn did not apply plugins.all={on} within 30 s")
        _, _, html = request(port, "GET", path, headers={"Cookie": cookie})
        streak = streak + 1 if ("data-plugin-status=" in html) == on else 0
        if streak == 0:
            time.sleep(0.1)


def under_gunicorn(args: argparse.Namespace, env: dict[str, str], work_dir: Path,
                   switch: Callable[[bool], None], client_id: int) -> dict[str, Any]:
    pages = {"client_page": f"/clients/{client_id}", "dashboard": "/",
             "terminal_command": f"/api/plugins/terminal/actions/command?client_id={client_id}"}
    counts: dict[str, dict[bool, list[Any]]] = {name: {True: [], False: []} for name in pages}
    with gunicorn("page-cost", work_dir, env, args.workers, access_log=False) as server:
        cookie, token = log_in(server.port, AGENT, args.password)
        action_body = json.dumps({"command": terminal_command()})
        for number in range(args.rounds):
            for on in ((True, False) if number % 2 == 0 else (False, True)):
                switch(on)
                wait_applied(server.port, cookie, pages["client_page"], on, args.workers)
                for name, path in pages.items():
                    status = 200
                    if name == "terminal_command":
                        status = 200 if on else request(server.port, "POST", path, action_body, {
                            "Cookie": cookie, "Content-Type": "application/json",
                            "X-CSRFToken": token})[0]
                        script = wrk_scripts.post_json_script(status, cookie, token, action_body)
                    else:
                        script = wrk_scripts.get_script(200, cookie)
                    state = "on" if on else "off"
                    wrk(name, name, server.port, path, script, args, work_dir, args.warmup,
                        status)
                    result = wrk(name, name, server.port, path, script, args, work_dir,
                                 args.duration, status)
                    if result.errors:
                        raise RuntimeError(f"{name} ({state}): {result.errors} errors")
                    counts[name][on].append(result)
                    log(f"round {number + 1} {name} plugins {state}: {result.rps:.1f} req/s, "
                        f"p50 {result.p50_ms:.1f} ms")
    out: dict[str, Any] = {}
    for name, by_state in counts.items():
        rps = {on: sum(r.requests for r in rs) / sum(r.seconds for r in rs)
               for on, rs in by_state.items()}
        out[name] = {"on_rps": round(rps[True], 1), "off_rps": round(rps[False], 1),
                     "ratio": round(rps[True] / rps[False], 3),
                     "on_p50_ms": round(statistics.median(r.p50_ms for r in by_state[True]), 1),
                     "off_p50_ms": round(statistics.median(r.p50_ms for r in by_state[False]), 1),
                     "round_ratios": [round(a.rps / b.rps, 3)
                                      for a, b in zip(by_state[True], by_state[False])]}
    return out


# --- 4. the login storm -------------------------------------------------------------------------

def set_hashes(url: str, password_hash: str, agents: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE username LIKE 'agent%%' "
                     "AND username <= %s", (password_hash, f"agent{agents:05d}"))


def storm(port: int, agents: int, password: str) -> dict[str, Any]:
    """`agents` agents each GET /login, then all POST it at the same moment."""
    forms = []
    for n in range(1, agents + 1):
        status, headers, html = request(port, "GET", "/login")
        forms.append((f"agent{n:05d}", cookie_of(headers) or "", csrf_from(html)))
    barrier = threading.Barrier(agents + 1)
    answers: list[tuple[float, bool]] = [(0.0, False)] * agents

    def one(index: int) -> None:
        username, cookie, token = forms[index]
        body = (f"csrf_token={quote_plus(token)}&username={username}"
                f"&password={quote_plus(password)}")
        barrier.wait()
        started = time.perf_counter()
        try:
            status, headers, _ = request(port, "POST", "/login", body, {
                "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
            ok = status == 302 and not headers.get("Location", "").startswith("/login")
        except OSError:
            ok = False
        answers[index] = ((time.perf_counter() - started) * 1000, ok)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(agents)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = [ms for ms, ok in answers if ok]
    return {"agents": agents, "logged_in": len(latencies), "seconds": round(elapsed, 2),
            "logins_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(p(latencies, 0.5), 0) if latencies else None,
            "p95_ms": round(p(latencies, 0.95), 0) if latencies else None}


def login_storms(args: argparse.Namespace, env: dict[str, str], work_dir: Path) -> dict[str, Any]:
    from legacy_passwords_app import LEGACY

    from cms.auth.passwords import Passwords

    runs: dict[str, list[dict[str, Any]]] = {"legacy": [], "current": []}
    current = Passwords()
    hashes = {"legacy": LEGACY.hash(args.password), "current": current.hash(args.password)}
    apps = {"legacy": "bench.legacy_passwords_app:app", "current": None}
    for number in range(2):
        for name in (("legacy", "current") if number == 0 else ("current", "legacy")):
            warm = 2 * args.workers  # agents after the storm's, to warm every worker first
            set_hashes(args.database_url, hashes[name], args.storm + warm)
            with gunicorn(f"storm-{name}", work_dir, env, args.workers, app=apps[name],
                          access_log=False) as server:
                for n in range(args.storm + 1, args.storm + warm + 1):
                    log_in(server.port, f"agent{n:05d}", args.password)
                result = storm(server.port, args.storm, args.password)
            if result["logged_in"] != args.storm:
                raise RuntimeError(f"{name} storm: {result['logged_in']} of {args.storm} logged in")
            runs[name].append(result)
            log(f"login storm, {name}: {result['logins_per_s']} logins/s, p95 {result['p95_ms']} ms")

    def total(name: str) -> dict[str, Any]:
        done = runs[name]
        return {"logins_per_s": round(sum(r["logged_in"] for r in done)
                                      / sum(r["seconds"] for r in done), 1),
                "p95_ms": max(r["p95_ms"] for r in done), "runs": done}
    params = current.parameters
    return {"current": total("current"), "legacy": total("legacy"),
            "current_parameters": f"argon2id m={params.memory_cost // 1024} MiB, "
                                  f"t={params.time_cost}, p={params.parallelism}",
            "legacy_parameters": f"argon2id m={LEGACY.memory_cost // 1024} MiB, "
                                 f"t={LEGACY.time_cost}, p={LEGACY.parallelism}"}


# --- report -------------------------------------------------------------------------------------

def summary(measured: dict[str, Any]) -> dict[str, Any]:
    wrk_results, inproc, logins = measured["gunicorn"], measured["in_process"], measured["logins"]
    return {
        "client_page_ratio": wrk_results["client_page"]["ratio"],
        "dashboard_ratio": wrk_results["dashboard"]["ratio"],
        "statements_extra": inproc["statements_extra"],
        "logins_per_s": logins["current"]["logins_per_s"],
        "login_p95_ms": logins["current"]["p95_ms"],
        "legacy_logins_per_s": logins["legacy"]["logins_per_s"],
        "legacy_login_p95_ms": logins["legacy"]["p95_ms"],
        "login_speedup": round(logins["current"]["logins_per_s"]
                               / logins["legacy"]["logins_per_s"], 2),
        "action_p50_ms": inproc["p50_ms"]["terminal_command"]["on"],
        "spinner_added_ms": measured["spinner"]["added_ms"],
        "panel_budget_ms": measured["spinner"]["budget_ms"],
        **measured,
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def block(s: dict[str, Any], command: str, load_before: str, args: argparse.Namespace) -> str:
    g, ip, sp, lg = s["gunicorn"], s["in_process"], s["spinner"], s["logins"]
    labels = {"client_page": f"client page `/clients/{ip['client_id']}` (3 sidebar panels)",
              "dashboard": "dashboard `/` (widget, toolbar, status strip)",
              "terminal_command": f"terminal `{terminal_command()[:2]}` availability, JSON API"}
    rows = "\n".join(
        f"| {labels[name]} | {r['on_rps']} | {r['off_rps']} | **{r['ratio']:.2f}x** "
        f"({', '.join(f'{x:.2f}' for x in r['round_ratios'])}) | {r['on_p50_ms']} | {r['off_p50_ms']} |"
        for name, r in g.items())
    statements = "\n".join(
        f"| {labels[page]} | {c['on']} | {c['off']} | {c['on'] - c['off']} |"
        for page, c in ip["statements"].items())
    inproc = "\n".join(f"| {name} | {v['on']} | {v['off']} |" for name, v in ip["p50_ms"].items())
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    worst = min(s["client_page_ratio"], s["dashboard_ratio"])
    return f"""{BLOCK_BEGIN}

## Page cost of plugins, and the login storm

Written by `bench/page_cost.py --write` from a real run (issue 13).

- Date: {today}
- Command: `{command}`
- Machine: {machine()}
- Load average (1, 5, 15 min): {load_before} before the run, {load_average()} after
- Set-up: PostgreSQL `cms_bench` (12,000 agents, 100,000 clients), the three bundled plugins, a \
Redis of the run's own; Gunicorn with the project's `gunicorn.conf.py`, {args.workers} sync \
workers, wrk {args.threads} threads x {args.connections} connections; {args.rounds} alternating \
rounds of {args.duration} s per page and state (plugins on / `plugins.all` off), each after every \
worker was seen to apply the switch; logged in as `{AGENT}`

### Under Gunicorn (wrk)

| request | plugins on, req/s | `plugins.all` off, req/s | on / off (per round) | p50 on, ms | p50 off, ms |
|---|---:|---:|---:|---:|---:|
{rows}

With `plugins.all` off the terminal action is refused ({ip['action_off_status']}) before any \
sandbox work, so its ratio compares a full action with a refusal.

### In-process (Flask test client, PostgreSQL)

| page | statements, plugins on | statements, off | extra |
|---|---:|---:|---:|
{statements}

| request | p50 ms, plugins on | p50 ms, off |
|---|---:|---:|
{inproc}

### A panel that spins to its deadline

Client page (temporary SQLite app, bundled plugins) with a fourth sidebar panel whose plugin spins \
until a limit ends it (fuel 10^9 or its {sp['deadline_ms']} ms deadline, whichever comes first), against the same page with that plugin switched off: \
p50 {sp['page_with_spinner_p50_ms']} ms against {sp['page_p50_ms']} ms, **{sp['added_ms']} ms \
added** for a panel budget of {sp['budget_ms']} ms (`CMS_PANEL_BUDGET_MS`). The browser then \
fetches that panel on its own: {sp['deferred_fetch_ms']:.0f} ms, answered \
{sp['deferred_status']} with the plugin's fallback.

### Login storm

{lg['current']['runs'][0]['agents']} agents fetch the form, then all post it at the same moment \
(Gunicorn, {args.workers} workers); two storms per parameter set, alternating. The reference is \
the same CMS with the argon2id parameters it had before (bench/legacy_passwords_app.py); the \
agents' hashes are set to the run's parameters first, so nothing is rehashed.

| argon2id | logins/s | p95 ms (worst storm) |
|---|---:|---:|
| {lg['legacy_parameters']} (before) | {s['legacy_logins_per_s']} | {s['legacy_login_p95_ms']:.0f} |
| {lg['current_parameters']} (now) | {s['logins_per_s']} | {s['login_p95_ms']:.0f} |

### Goals

- client page and dashboard, plugins on / off: **{s['client_page_ratio']:.2f}x** and \
**{s['dashboard_ratio']:.2f}x** (goal >= {GOAL_RATIO}x: {verdict(worst >= GOAL_RATIO)})
- extra statements per page with plugins on: **{s['statements_extra']}** (goal <= \
{GOAL_EXTRA_STATEMENTS}: {verdict(s['statements_extra'] <= GOAL_EXTRA_STATEMENTS)})
- a spinning panel adds **{s['spinner_added_ms']} ms** (goal <= its budget, {s['panel_budget_ms']} \
ms: {verdict(s['spinner_added_ms'] <= s['panel_budget_ms'])})
- logins: **{s['login_speedup']:.1f}x** the logins/s of the old parameters (goal >= \
{GOAL_LOGIN_SPEEDUP}x: {verdict(s['login_speedup'] >= GOAL_LOGIN_SPEEDUP)})
- one plugin action through the JSON API, in-process on PostgreSQL: **{s['action_p50_ms']} ms** \
p50 (goal <= {GOAL_ACTION_P50_MS} ms: {verdict(s['action_p50_ms'] <= GOAL_ACTION_P50_MS)})

{BLOCK_END}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="seeded agents' password")
    parser.add_argument("--workers", type=int, default=4, help="Gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=0, help="default: one per worker")
    parser.add_argument("--duration", type=int, default=8, help="wrk seconds per page and state")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating on/off rounds")
    parser.add_argument("--requests", type=int, default=60, help="in-process requests per round")
    parser.add_argument("--storm", type=int, default=200, help="agents in one login storm")
    parser.add_argument("--agencies", type=int, default=50)
    parser.add_argument("--agents", type=int, default=12_000)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--write", action="store_true", help="replace the block in docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.connections = args.connections or max(args.workers, args.threads)
    for name in ("workers", "threads", "duration", "rounds", "requests", "storm"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.storm + 2 * args.workers > args.agents:
        parser.error("--storm plus two agents per worker is at most --agents")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import logging
    logging.getLogger("cms").setLevel(logging.WARNING)  # the in-process app's plugin log lines
    signal.signal(signal.SIGTERM, _interrupt)
    command = shlex.join([".venv/bin/python", "bench/page_cost.py",
                          *(argv if argv is not None else sys.argv[1:])])
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="cms-page-cost-") as tmp:
        work_dir = Path(tmp)
        env = {**os.environ, "CMS_DATABASE_URL": args.database_url, "CMS_ENV": "production",
               "CMS_SECRET_KEY": secrets.token_urlsafe(32), "CMS_SECURE_COOKIES": "false",
               "CMS_INSTANCE_PATH": str(Path(tempfile.gettempdir()) / "cms-page-cost-instance"),
               "CMS_DEMO_PASSWORD": args.password, "GUNICORN_LOG_LEVEL": "warning",
               "HOST": "127.0.0.1", "PYTHONPATH": f"{REPO}:{REPO / 'bench'}"}
        env.pop("CMS_REDIS_URL", None)
        prepare_database(args, env)
        subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "cms", "plugins",
                        "sync"], env=env, cwd=REPO, check=True, timeout=600, capture_output=True)
        measured: dict[str, Any] = {}
        log("a spinning panel (SQLite, in-process)")
        measured["spinner"] = spinning_panel(args)
        with redis_server(work_dir) as redis_url:
            env["CMS_REDIS_URL"] = redis_url
            os.environ.update(env)
            log("in-process on PostgreSQL")
            measured["in_process"] = in_process(args)
            switcher = InProcess(args.password)
            try:
                log("under Gunicorn")
                measured["gunicorn"] = under_gunicorn(args, env, work_dir, switcher.set_plugins,
                                                      measured["in_process"]["client_id"])
            finally:
                switcher.set_plugins(True)
            log("login storms")
            measured["logins"] = login_storms(args, env, work_dir)
    result = summary(measured)
    if args.json:
        print(json.dumps(result))
    text = block(result, command, load_before, args)
    if not args.json:
        print(text)
    if args.write:
        replace_block(DOC, BLOCK_BEGIN, BLOCK_END, text)
        log(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        sys.exit(130)
