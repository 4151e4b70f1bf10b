"""The 10 April incident, replayed under load: faulty plugin versions released to every agent of
a busy CMS, with the sandbox, and (the control) without it.

    .venv/bin/python bench/incident_replay.py [--short | --smoke] [--json] [--write] [--no-control]

It prepares the PostgreSQL database `cms_replay` (created, migrated and seeded with 12,000 agents
the first time, then reused), starts a Redis of its own and Gunicorn (the project's settings,
access log to a file) on 127.0.0.1, and drives agents with locust (headless, constant
throughput): logins, client searches, client pages with the plugin panels, softphone, mail and
terminal actions. After the warm-up and a baseline phase it releases the leaking softphone, the
spinning mail and the failing terminal to 100 % of agents through the admin API, as on 10 April,
and keeps the load going. The control run does the same against the CMS with those three
versions run in-process as plain Python (bench/replay/legacy_app.py; the leak capped, Gunicorn's
timeout as the bound). It prints the figures (with --json one JSON object), and with --write
rewrites docs/incident-replay.md, its charts in docs/img/ and its block of docs/benchmarks.md.

--short runs the whole scenario in under 4 minutes; --smoke (30-40 s of load, a small database
of its own, no control) is what tests/bench runs. Every process it starts is stopped at the end,
also on failure or Ctrl-C; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "replay"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import analysis  # noqa: E402  (bench/ is not a package: sibling modules by path)
import database  # noqa: E402
from servers import (REPO, VENV_BIN, RssSampler, Server, gunicorn, log,  # noqa: E402
                     redis_server, start_group, stop_group, wait_for, webhook_receiver)

DEFAULT_DATABASE = "postgresql://127.0.0.1/cms_replay"
SMOKE_DATABASE = "postgresql://127.0.0.1/cms_replay_smoke"
PASSWORD = "demo-travel-2026"
USER_AGENT = "cms-replay-locust"
REQUEST_TIMEOUT_S = 30
#: Goals from the issue.
GOALS = {"failed_logins": 0, "worker_deaths": 0, "worker_timeouts": 0, "requests_lost": 0,
         "p99_login_ratio": 1.5, "rss_growth_mb": 20.0, "quarantine_s": 10.0,
         "first_alert_s": 5.0, "false_alarms": 0}
JSON_KEYS = ["failed_logins", "worker_deaths", "worker_timeouts", "requests_lost",
             "p99_login_ratio", "rss_growth_mb", "quarantine_s", "first_alert_s", "false_alarms"]

#: (warm-up, baseline, faulty) seconds, users, control (warm-up, baseline, faulty).
MODES: dict[str, dict[str, Any]] = {
    "full": {"phases": (20, 120, 300), "users": 32, "control": (15, 45, 120)},
    "short": {"phases": (10, 35, 60), "users": 32, "control": (10, 10, 40)},
    # Ten minutes of the healthy plugins at the same load, then the release: false alarms.
    "soak": {"phases": (10, 600, 30), "users": 32, "control": None},
    "smoke": {"phases": (5, 10, 15), "users": 6, "control": None},
}


@dataclass
class RunData:
    """What one run (sandboxed or control) left behind, for the analysis and the report."""

    name: str
    rows: list[analysis.Row]
    phases: analysis.Phases
    events: analysis.ServerEvents
    samples: list[tuple[float, int, float]]
    releases: dict[str, dict[str, Any]]
    outcomes: dict[str, Any]
    webhooks: list[tuple[float, dict[str, Any]]]
    summary: dict[str, Any]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--short", action="store_true", help="the whole scenario in under 4 minutes")
    mode.add_argument("--soak", action="store_true",
                      help="a 10-minute baseline of the healthy plugins at the same load before "
                           "the release (no control): is any healthy version ever flagged?")
    mode.add_argument("--smoke", action="store_true",
                      help="a tiny run (30-40 s of load, small database, no control) for tests")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--write", action="store_true",
                        help="rewrite docs/incident-replay.md, docs/img/replay-*.png and the "
                             "replay block of docs/benchmarks.md")
    parser.add_argument("--no-control", action="store_true", help="skip the control run")
    parser.add_argument("--database-url", help=f"default {DEFAULT_DATABASE} ({SMOKE_DATABASE} "
                                                "with --smoke); created and seeded if needed")
    parser.add_argument("--agents", type=int, help="seeded agents (default 12,000; 60 for --smoke)")
    parser.add_argument("--workers", type=int, default=4, help="Gunicorn workers (default 4)")
    parser.add_argument("--users", type=int, help="locust users (agents working at once)")
    parser.add_argument("--pace", type=float, default=0.25,
                        help="task iterations per second per desk agent (default 0.25)")
    parser.add_argument("--phone-pace", type=float, default=1.0,
                        help="task iterations per second per phone agent (default 1)")
    parser.add_argument("--phone-users", type=int, help="call-centre agents (default 2; 1 smoke)")
    parser.add_argument("--login-users", type=int,
                        help="agents arriving for their shift (default 6; 2 smoke), each "
                             "logging in and out at --login-pace")
    parser.add_argument("--login-pace", type=float, default=0.12,
                        help="logins per second per arriving agent (default 0.12)")
    parser.add_argument("--phases", help="warm-up,baseline,faulty seconds (default by mode)")
    parser.add_argument("--keep-logs", type=Path, help="copy the run's logs into this folder")
    args = parser.parse_args(argv)
    args.mode = ("short" if args.short else "smoke" if args.smoke else "soak" if args.soak
                 else "full")
    preset = MODES[args.mode]
    args.database_url = args.database_url or (SMOKE_DATABASE if args.smoke else DEFAULT_DATABASE)
    args.agents = args.agents or (60 if args.smoke else 12_000)
    args.agencies = 2 if args.agents < 1000 else 50
    args.clients = 300 if args.agents < 1000 else 100_000
    args.users = args.users or preset["users"]
    args.phone_users = 1 if args.phone_users is None and args.smoke else (
        2 if args.phone_users is None else args.phone_users)
    phases = preset["phases"]
    if args.phases:
        try:
            phases = tuple(int(n) for n in args.phases.split(","))
        except ValueError:
            parser.error("--phases is three whole numbers: warm-up,baseline,faulty")
        if len(phases) != 3 or min(phases) < 1 or sum(phases) > 3600:
            parser.error("--phases is three whole numbers >= 1, at most an hour in all")
    args.phases = phases
    args.control = None if args.no_control else preset["control"]
    args.login_users = args.login_users if args.login_users is not None else (
        2 if args.smoke else 6)
    if args.write and args.smoke:
        parser.error("--smoke runs are not written into the docs")
    if args.users <= args.phone_users + args.login_users or args.workers < 1 or min(
            args.pace, args.phone_pace, args.login_pace) <= 0:
        parser.error("need more users than phone and arriving agents, at least one worker, and "
                     "positive paces")
    return args


def base_env(args: argparse.Namespace, work_dir: Path) -> dict[str, str]:
    instance = database.artifact_dir_for(args.database_url, Path(tempfile.gettempdir()))
    return {**os.environ, "CMS_DATABASE_URL": args.database_url, "CMS_ENV": "production",
            "CMS_SECRET_KEY": secrets.token_urlsafe(32), "CMS_SECURE_COOKIES": "false",
            "CMS_INSTANCE_PATH": str(instance), "CMS_DEMO_PASSWORD": PASSWORD,
            "HOST": "127.0.0.1", "PYTHONPATH": str(REPO), "CMS_ALERT_EMAIL": "false"}


# The run --------------------------------------------------------------------------------------

def release(server: Server, token: str, faulty: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Promote every faulty version to 100 % of agents at once through the admin API, overriding
    the staging gate (which fails all three) as the 10 April release had no gate to stop it."""
    results: dict[str, dict[str, Any]] = {}

    def promote(plugin_id: str, version: str) -> None:
        body = json.dumps({"version": version, "approve_capabilities": True,
                           "reason": "incident replay: the 10 April release",
                           "override_gate": "replaying 10 April: released with no gate"}).encode()
        request = urllib.request.Request(
            f"{server.base}/api/admin/plugins/{plugin_id}/promote", data=body, method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     "User-Agent": "cms-replay-admin"})
        sent = time.time()
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError as error:
            status = 0
            log(f"promote {plugin_id} failed: {error}")
        results[plugin_id] = {"version": version, "sent": sent, "answered": time.time(),
                              "status": status}

    threads = [threading.Thread(target=promote, args=(plugin_id, info["version"]))
               for plugin_id, info in faulty.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S + 5)
    failed = {p: r["status"] for p, r in results.items() if r["status"] != 200}
    if failed or len(results) != len(faulty):
        raise RuntimeError(f"the release did not go through: {failed or results}")
    log("released " + ", ".join(f"{p} {i['version']}" for p, i in faulty.items())
        + " to 100 % of agents")
    return results


def run_load(name: str, args: argparse.Namespace, env: dict[str, str], work_dir: Path,
             token: str, faulty: dict[str, dict[str, Any]], phases: tuple[int, int, int],
             app: str | None) -> RunData:
    """One run: server, load, release after warm-up + baseline, and what it left behind."""
    warmup, baseline, faulty_s = phases
    request_log = work_dir / f"{name}.requests.csv"
    with redis_server(work_dir) as redis_url, webhook_receiver() as hooks:
        server_env = {**env, "CMS_REDIS_URL": redis_url, "CMS_ALERT_WEBHOOKS": hooks.url}
        with gunicorn(name, work_dir, server_env, args.workers, app=app) as server:
            sampler = RssSampler(server.process.pid, interval=1.0,
                                 limit_s=sum(phases) + 600)
            sampler.start()
            run_time = sum(phases)
            # In-flight requests finish (so sent and answered compare); the control's are mostly
            # stuck behind spinning workers, so it waits less and its lost count is a floor.
            stop_timeout = REQUEST_TIMEOUT_S + 5 if app is None else 5
            locust_env = {**env, "REPLAY_REQUEST_LOG": str(request_log),
                          "REPLAY_AGENTS": str(args.agents), "REPLAY_PASSWORD": PASSWORD,
                          "REPLAY_PACE": str(args.pace), "REPLAY_PHONE_PACE": str(args.phone_pace),
                          "REPLAY_PHONE_USERS": str(args.phone_users),
                          "REPLAY_LOGIN_USERS": str(args.login_users),
                          "REPLAY_LOGIN_PACE": str(args.login_pace),
                          "REPLAY_TIMEOUT": str(REQUEST_TIMEOUT_S), "REPLAY_USER_AGENT": USER_AGENT}
            command = [str(VENV_BIN / "locust"), "-f", str(REPO / "bench/replay/locustfile.py"),
                       "--headless", "--only-summary", "--loglevel", "WARNING",
                       "-u", str(args.users), "-r", str(max(1, args.users // 4)),
                       "--run-time", f"{run_time}s", "--stop-timeout", str(stop_timeout),
                       "--host", server.base]
            log(f"{name}: {args.users} agents ({args.phone_users} on the phone, "
                f"{args.login_users} arriving) for {run_time} s: "
                f"warm-up {warmup} s, baseline {baseline} s, faulty {faulty_s} s")
            locust = start_group(command, locust_env, work_dir / f"{name}.locust.log")
            try:
                if not wait_for(lambda: request_log.exists() and request_log.stat().st_size > 0,
                                60, 0.1):
                    raise RuntimeError(f"locust sent nothing; see {work_dir / (name + '.locust.log')}")
                start = time.time()
                release_at = start + warmup + baseline
                while time.time() < release_at and locust.poll() is None:
                    time.sleep(min(0.2, max(0.0, release_at - time.time())))
                releases = release(server, token, faulty)
                t_release = min(r["sent"] for r in releases.values())
                locust.wait(timeout=faulty_s + REQUEST_TIMEOUT_S + 120)
            finally:
                stop_group(locust, grace=10)
            time.sleep(1.5)  # the access log's last lines
            sampler.stop()
            log_text = server.log_text()
        webhooks = list(hooks.received)
    phases_at = analysis.Phases(start, start + warmup, t_release, t_release + faulty_s)
    rows = analysis.read_rows(request_log)
    answered = analysis.answered_in_access_log(server.access_log, USER_AGENT)
    events = analysis.server_events(log_text)
    summary = analysis.summarize(rows, phases_at, answered, events, args.workers, sampler.samples)
    outcomes = database.outcomes(env, start)
    summary.update(incident_times(releases, outcomes, webhooks, t_release))
    summary.update(false_alarms(releases, outcomes))
    quarantined = [t_release + took for took in summary["quarantine_s_by_version"].values()
                   if took is not None]
    if quarantined and max(quarantined) < phases_at.end - 5:
        # The faulty phase split at the last quarantine: what the faulty versions cost while
        # they served, and what was left after.
        last = max(quarantined)
        summary["phases"]["faulty, until the last quarantine"] = analysis.window_stats(
            rows, t_release, last)
        summary["phases"]["faulty, after it"] = analysis.window_stats(rows, last, phases_at.end)
    return RunData(name, rows, phases_at, events, sampler.samples, releases, outcomes, webhooks,
                   summary)


def incident_times(releases: dict[str, dict[str, Any]], outcomes: dict[str, Any],
                   webhooks: list[tuple[float, dict[str, Any]]], t_release: float) -> dict[str, Any]:
    """Seconds from the release to each faulty version's quarantine, to the first quarantine
    audit event, to the first alert (alerts table) and the first alert webhook."""
    by_version: dict[str, float | None] = {}
    for plugin_id, info in releases.items():
        row = outcomes["versions"].get(f"{plugin_id} {info['version']}", {})
        at = row.get("quarantined_at")
        by_version[f"{plugin_id} {info['version']}"] = (
            round(at - info["sent"], 2) if at is not None and at >= info["sent"] else None)
    quarantines = [e for e in outcomes["audit"] if e["action"] == "plugin.quarantine"
                   and e["t"] >= t_release]
    alerts = [a for a in (outcomes["alerts"] or []) if a["t"] >= t_release - 1]
    values = list(by_version.values())
    return {
        "quarantine_s_by_version": by_version,
        "quarantine_s": (max(v for v in values if v is not None)
                         if values and all(v is not None for v in values) else None),
        "first_quarantine_event_s": round(quarantines[0]["t"] - t_release, 2) if quarantines else None,
        "quarantined_by": {e["target"]: e["actor"] for e in quarantines},
        "alerts_table": outcomes["alerts"] is not None,
        "first_alert_s": round(alerts[0]["t"] - t_release, 2) if alerts else None,
        "first_alert": alerts[0] if alerts else None,
        "alerts": alerts,
        "first_webhook_s": round(webhooks[0][0] - t_release, 2) if webhooks else None,
    }


def false_alarms(releases: dict[str, dict[str, Any]], outcomes: dict[str, Any]) -> dict[str, Any]:
    """Critical alerts and quarantines, over the whole run (baseline and faulty phases), of any
    plugin version that is not one of the faulty ones: the goal is none."""
    faulty = {(plugin_id, info["version"]) for plugin_id, info in releases.items()}
    found = [f"{a['kind']} critical for {a['plugin_id']} {a['version']}: {a['message']}"
             for a in outcomes["alerts"] or []
             if a["severity"] == "critical" and a["plugin_id"]
             and (a["plugin_id"], a["version"]) not in faulty]
    labels = {f"{p} {v}" for p, v in faulty}
    found += [f"quarantine of {e['target']} by {e['actor']}" for e in outcomes["audit"]
              if e["action"] == "plugin.quarantine" and e["target"] not in labels]
    return {"false_alarms": len(found), "false_alarm_list": found}


def verdicts(summary: dict[str, Any]) -> dict[str, bool | None]:
    """Each goal: met, not met, or None when it could not be measured. A faulty version still
    serving at the end of the run misses the quarantine goal; no alert at all misses its goal."""
    out: dict[str, bool | None] = {}
    for key, goal in GOALS.items():
        value = summary.get(key)
        out[key] = None if value is None else value <= goal
    if summary.get("quarantine_s") is None and summary.get("quarantine_s_by_version"):
        out["quarantine_s"] = False
    if summary.get("first_alert_s") is None and summary.get("alerts_table"):
        out["first_alert_s"] = False
    return out


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    command = shlex.join([".venv/bin/python", "bench/incident_replay.py",
                          *(argv if argv is not None else sys.argv[1:])])
    started = time.monotonic()
    from bench_report import load_average

    load_before = load_average()
    work_dir = Path(tempfile.mkdtemp(prefix="cms-replay-"))
    ok = False
    try:
        env = base_env(args, work_dir)
        seed_command, token = database.prepare(args.database_url, env, args.agents, args.agencies,
                                               args.clients, PASSWORD)
        faulty = database.reset(env)
        runs = [run_load("sandbox", args, env, work_dir, token, faulty, args.phases, None)]
        if args.control:
            database.reset(env)
            runs.append(run_load("control", args, env, work_dir, token, faulty, args.control,
                                 "bench.replay.legacy_app:app"))
        elapsed = time.monotonic() - started
        result = {key: runs[0].summary[key] for key in JSON_KEYS}
        result.update({"mode": args.mode, "seconds": round(elapsed, 1),
                       "goals_met": verdicts(runs[0].summary),
                       "staging_gate": {p: {"version": i["version"], "gate": i.get("gate"),
                                            "problems": i.get("problems", [])}
                                        for p, i in faulty.items()},
                       "sandbox": runs[0].summary,
                       "control": runs[1].summary if len(runs) > 1 else None})
        if args.write:
            import report

            report.write(runs, result, args, command, seed_command, load_before)
        if args.json:
            print(json.dumps(result, default=str))
        else:
            print(report_text(runs, result))
        ok = True
        return 0
    finally:
        if args.keep_logs:
            shutil.copytree(work_dir, args.keep_logs, dirs_exist_ok=True)
        if ok and not args.keep_logs:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            log(f"logs kept in {args.keep_logs or work_dir}")


def report_text(runs: list[RunData], result: dict[str, Any]) -> str:
    import report

    return report.summary_table(runs, result)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; every process stopped")
        sys.exit(130)
