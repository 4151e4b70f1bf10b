"""The replay's report: a text table, PNG charts over time (matplotlib), the mode's block of
docs/incident-replay.md and the replay block of docs/benchmarks.md."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis import bins, is_server_error, percentile
from servers import REPO

DOC = REPO / "docs" / "incident-replay.md"
BENCHMARKS = REPO / "docs" / "benchmarks.md"
IMG = REPO / "docs" / "img"
BIN_S = 5.0
BENCH_BEGIN = "<!-- bench/incident_replay.py --write: begin (generated; replaced on every --write) -->"
BENCH_END = "<!-- bench/incident_replay.py --write: end -->"
KEPT_MARKER = "<!-- Everything below this line is hand-written and kept by --write. -->"

ROWS = [  # (key, label, goal text, unit)
    ("failed_logins", "failed logins", "0", ""),
    ("worker_deaths", "worker deaths", "0", ""),
    ("worker_timeouts", "worker timeouts", "0", ""),
    ("requests_lost", "requests lost (sent - answered in the access log)", "0", ""),
    ("p99_login_ratio", "p99 login latency, faulty / baseline", "<= 1.5x", "x"),
    ("rss_growth_mb", "worker RSS growth after the release (largest worker)", "<= 20 MB", " MiB"),
    ("quarantine_s", "release to quarantine (slowest faulty version)", "<= 10 s", " s"),
    ("first_alert_s", "release to first alert (alerts table)", "<= 5 s", " s"),
    ("false_alarms", "healthy versions quarantined or critically alerted (whole run)", "0", ""),
]


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.2f}{unit}" if unit == "x" else f"{value:.1f}{unit}"
    return f"{value}{unit}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**NOT met**", None: "not measured"}[met]


def _cell(run: Any, key: str, unit: str) -> str:
    value = run.summary.get(key)
    if value is None and key == "quarantine_s" and run.releases:
        missing = [v for v, took in run.summary["quarantine_s_by_version"].items() if took is None]
        return (f"{', '.join(missing)}: not within the {run.phases.end - run.phases.release:.0f} s"
                if len(missing) < len(run.releases) else "none quarantined")
    if key == "p99_login_ratio":
        faulty = run.summary["phases"]["faulty"]
        if faulty["logins"] and faulty["logins"] == faulty["failed_logins"]:
            return "no login succeeded"
        if faulty["failed_logins"]:
            return (f"{_fmt(value, unit)} of the {faulty['logins'] - faulty['failed_logins']} "
                    f"that succeeded ({faulty['failed_logins']} failed)")
    if value is None and key == "first_alert_s":
        return "no alert"
    return _fmt(value, unit)


def summary_table(runs: list[Any], result: dict[str, Any]) -> str:
    control = runs[1].summary if len(runs) > 1 else None
    lines = ["| measure | goal | sandboxed CMS | " + ("control (no sandbox) | " if control else "")
             + "goal (sandboxed) |",
             "|---|---|---:|" + ("---:|" if control else "") + "---|"]
    for key, label, goal, unit in ROWS:
        cells = [label, goal, _cell(runs[0], key, unit)]
        if control is not None:
            cells.append(_cell(runs[1], key, unit))
        cells.append(_verdict(result["goals_met"].get(key)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def phase_table(runs: list[Any]) -> str:
    lines = ["| run | phase | s | requests/s | request p50 / p99 ms | logins (failed) | "
             "login p50 / p99 ms | server errors | timeouts | plugin-fault answers |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        for phase, s in run.summary["phases"].items():
            lines.append(
                f"| {run.name} | {phase} | {s['seconds']:.0f} | {_fmt(s['requests_per_s'])} | "
                f"{_fmt(s['request_p50_ms'])} / {_fmt(s['request_p99_ms'])} | {s['logins']} "
                f"({s['failed_logins']}) | {_fmt(s['login_p50_ms'])} / {_fmt(s['login_p99_ms'])} | "
                f"{s['server_errors']} | {s['timeouts']} | {s['plugin_fault_answers']} |")
    return "\n".join(lines)


def quarantine_table(run: Any) -> str:
    lines = ["| faulty version | released (promote sent) | quarantined after | by |",
             "|---|---|---:|---|"]
    by = run.summary.get("quarantined_by", {})
    for plugin_id, info in run.releases.items():
        label = f"{plugin_id} {info['version']}"
        took = run.summary["quarantine_s_by_version"].get(label)
        at = datetime.fromtimestamp(info["sent"], timezone.utc).strftime("%H:%M:%S.%f")[:-4]
        lines.append(f"| {label} | {at} UTC | "
                     f"{f'{took:.2f} s' if took is not None else 'not quarantined in the run'} | "
                     f"{by.get(label, '-')} |")
    return "\n".join(lines)


def alert_lines(run: Any) -> str:
    alerts = run.summary.get("alerts") or []
    if not run.summary.get("alerts_table"):
        return "  - The alerts table did not exist in this database at the time of the run."
    if not alerts:
        return "  - No alert was raised after the release."
    t0 = run.phases.release
    return "\n".join(f"  - +{a['t'] - t0:.2f} s: `{a['kind']}` {a['severity']} for "
                     f"{a['plugin_id'] or '-'} {a['version'] or ''}: {a['message'][:160]}"
                     for a in alerts[:8])


# Charts ---------------------------------------------------------------------------------------

def charts(runs: list[Any], mode: str) -> list[Path]:
    """Three PNGs (latency, RSS, errors), one panel per run, time in seconds since the release."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    paths = []
    for what, draw in (("latency", _latency), ("rss", _rss), ("errors", _errors)):
        fig, axes = plt.subplots(len(runs), 1, figsize=(10, 3.6 * len(runs)), sharex=False,
                                 squeeze=False)
        for ax, run in zip(axes[:, 0], runs):
            draw(ax, run)
            _moments(ax, run)
            ax.set_title(f"{'sandboxed CMS (wasmtime)' if run.name == 'sandbox' else 'control: the same faults in-process, no sandbox'}",
                         fontsize=10)
            ax.set_xlabel("seconds since the release of the faulty versions")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left", framealpha=0.8)
        fig.tight_layout()
        path = IMG / f"replay-{mode}-{what}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _moments(ax: Any, run: Any) -> None:
    t0 = run.phases.release
    ax.axvline(0, color="black", linewidth=1.2)
    ax.text(0, 1.01, " release", transform=ax.get_xaxis_transform(), fontsize=8)
    for label, took in run.summary.get("quarantine_s_by_version", {}).items():
        if took is not None:
            start = run.releases[label.split()[0]]["sent"] - t0
            ax.axvline(start + took, color="tab:green", linestyle="--", linewidth=1)
            ax.text(start + took, 0.92, f" {label.split()[0]} quarantined", rotation=90,
                    transform=ax.get_xaxis_transform(), fontsize=7, color="tab:green", va="top")
    for t in run.events.timeouts:
        ax.axvline(t - t0, color="tab:red", alpha=0.35, linewidth=1)
    if run.events.timeouts:
        ax.plot([], [], color="tab:red", alpha=0.5, label="worker timeout (killed)")
    ax.set_xlim(run.phases.start - t0, run.phases.end - t0 + 2)


def _latency(ax: Any, run: Any) -> None:
    t0 = run.phases.start
    shift = run.phases.start - run.phases.release
    for kind, label, color in (("login", "login (form + post) p99", "tab:blue"),
                               ("http", "all requests p99", "tab:orange")):
        grouped = bins([r for r in run.rows if r.kind == kind], t0, BIN_S)
        xs = sorted(grouped)
        ax.plot([x * BIN_S + shift for x in xs],
                [percentile([r.ms for r in grouped[x]], 99) for x in xs], label=label,
                color=color, marker=".", linewidth=1)
    grouped = bins([r for r in run.rows if r.kind == "login"], t0, BIN_S)
    xs = sorted(grouped)
    ax.plot([x * BIN_S + shift for x in xs], [percentile([r.ms for r in grouped[x]], 50) for x in xs],
            label="login p50", color="tab:blue", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_ylabel(f"ms, by start (per {BIN_S:.0f} s, log)")


def _rss(ax: Any, run: Any) -> None:
    """Each worker's samples (thin) and its floor over the last 10 samples (bold): logins'
    argon2 hashes make the 19 MiB spikes; a leak would lift the floor."""
    t0 = run.phases.release
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for t, pid, mib in run.samples:
        by_pid.setdefault(pid, []).append((t - t0, mib))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    labelled: set[str] = set()
    for index, (pid, points) in enumerate(sorted(by_pid.items())):
        replacement = points[0][0] >= 0
        label = "replacement worker (floor)" if replacement else f"worker {pid} (floor)"
        if replacement and label in labelled:
            label = "_"
        labelled.add(label)
        color = "tab:gray" if replacement else colors[index % len(colors)]
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], linewidth=0.5, alpha=0.3, color=color)
        floor = [min(m for _, m in points[max(0, i - 9):i + 1]) for i in range(len(points))]
        ax.plot(xs, floor, linewidth=1.6, color=color, label=label)
    ax.set_ylabel("worker RSS, MiB (thin: samples)")


def _errors(ax: Any, run: Any) -> None:
    """Counts by the time they happened: a request's error when it ended, a fault when logged."""
    t0 = run.phases.release
    ended = [replace(r, start=r.start + r.ms / 1000) for r in run.rows]
    series = (("requests with no answer or a 5xx", "tab:red", is_server_error),
              ("failed logins", "tab:purple", lambda r: r.kind == "login" and not r.ok))
    for label, color, test in series:
        grouped = bins([r for r in ended if test(r)], t0, BIN_S)
        xs = sorted(grouped)
        ax.bar([x * BIN_S + BIN_S / 2 for x in xs], [len(grouped[x]) for x in xs],
               width=BIN_S * 0.9, alpha=0.6, color=color, label=label)
    if run.events.plugin_faults:
        faults: dict[int, int] = {}
        for t, _, _ in run.events.plugin_faults:
            faults[int((t - t0) // BIN_S)] = faults.get(int((t - t0) // BIN_S), 0) + 1
        xs = sorted(faults)
        ax.plot([x * BIN_S + BIN_S / 2 for x in xs], [faults[x] for x in xs], color="tab:gray",
                marker="o", linewidth=1, label="plugin faults caught by the sandbox (fallback shown)")
    ax.set_ylim(bottom=0)
    ax.set_ylabel(f"count per {BIN_S:.0f} s")


# Documents ------------------------------------------------------------------------------------

def _settings(args: argparse.Namespace, run: Any) -> str:
    warm = run.phases.warmup_end - run.phases.start
    base = run.phases.release - run.phases.warmup_end
    faulty = run.phases.end - run.phases.release
    return (f"warm-up {warm:.0f} s (not counted), baseline {base:.0f} s, faulty {faulty:.0f} s")


def mode_block(runs: list[Any], result: dict[str, Any], args: argparse.Namespace, command: str,
               seed_command: str | None, load_before: str, images: list[Path]) -> str:
    from bench_report import load_average, machine

    mode = args.mode
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    seeded = (f"seeded for this run (`{seed_command}`)" if seed_command else
              "reused, seeded earlier with `flask --app cms seed --agencies "
              f"{args.agencies} --agents {args.agents} --clients {args.clients}`")
    sandbox = runs[0]
    lines = [
        f"<!-- incident_replay {mode}: begin (generated by bench/incident_replay.py --write) -->",
        "",
        f"## The {mode} run",
        "",
        f"- Date: {today}; whole scenario {result['seconds']:.0f} s",
        f"- Command: `{command}`",
        f"- Machine: {machine()}",
        f"- Load average (1, 5, 15 min): {load_before} before, {load_average()} after",
        f"- Database: PostgreSQL `{args.database_url}`, {args.agents:,} agents; {seeded}",
        f"- Servers: Gunicorn, the project's `gunicorn.conf.py`, {args.workers} sync workers, "
        f"timeout 30 s, access log to a file; a Redis of the run's own; all on 127.0.0.1",
        f"- Load: locust, {args.users} users at constant throughput: "
        f"{args.users - args.phone_users - args.login_users} desk agents at {args.pace} tasks/s, "
        f"{args.phone_users} phone agents at {args.phone_pace} tasks/s, {args.login_users} "
        f"arriving agents logging in and out at {args.login_pace}/s each; request timeout 30 s",
        f"- Sandboxed run: {_settings(args, sandbox)}"
        + (f"; control: {_settings(args, runs[1])}" if len(runs) > 1 else ""),
        "",
        summary_table(runs, result),
        "",
        phase_table(runs),
        "",
        quarantine_table(sandbox),
        "",
        f"- First quarantine audit event: {_fmt(sandbox.summary['first_quarantine_event_s'], ' s')} "
        f"after the release; first alert webhook received: "
        f"{_fmt(sandbox.summary['first_webhook_s'], ' s')}",
        "- Alerts after the release (sandboxed run):",
        alert_lines(sandbox),
        "- Healthy versions flagged over the whole run (critical alerts, quarantines): "
        + ("; ".join(sandbox.summary.get("false_alarm_list", [])) or "none"),
        "- Plugin faults the sandbox caught after the release (each answered with the plugin's "
        "fallback text while the page rendered): " + (", ".join(
            f"{version}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())
            for version, kinds in sandbox.summary["plugin_faults_caught"].items()) or "none"),
        "- The staging gate (the version's vectors and a 200-call soak) on the faulty versions: "
        + "; ".join(f"{p} {g['version']} {g['gate']}"
                    + (f" ({g['problems'][0][:110]})" if g["problems"] else "")
                    for p, g in result.get("staging_gate", {}).items())
        + ". The replay releases them with a gate override, as 10 April had no gate.",
        "",
    ]
    if len(runs) > 1:
        control = runs[1].summary
        lines += [f"- Control: {control['worker_timeouts']} worker timeouts, "
                  f"{control['worker_deaths']} workers replaced, {control['failed_logins']} of "
                  f"{control['login_attempts']} logins failed, {control['server_errors']} requests "
                  f"without an answer or with a 5xx, RSS peak {_fmt(control['rss_peak_mb'], ' MiB')}.",
                  ""]
    for image in images:
        lines.append(f"![{image.stem}](img/{image.name})")
        lines.append("")
    lines.append(f"<!-- incident_replay {mode}: end -->")
    return "\n".join(lines) + "\n"


def bench_block(runs: list[Any], result: dict[str, Any], args: argparse.Namespace,
                command: str, load_before: str) -> str:
    from bench_report import load_average, machine

    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{BENCH_BEGIN}

## Incident replay

Written by `bench/incident_replay.py --write` from a real run ({args.mode} mode); the full report
with charts is [incident-replay.md](incident-replay.md).

- Date: {today}; whole scenario {result['seconds']:.0f} s
- Command: `{command}`
- Machine: {machine()}
- Load average (1, 5, 15 min): {load_before} before the run, {load_average()} after
- Load: locust, {args.users} agents at constant throughput against {args.workers} Gunicorn \
workers on PostgreSQL ({args.agents:,} agents seeded) and Redis; faulty versions released to 100 % \
after {runs[0].phases.release - runs[0].phases.start:.0f} s

{summary_table(runs, result)}

{BENCH_END}
"""


def write(runs: list[Any], result: dict[str, Any], args: argparse.Namespace, command: str,
          seed_command: str | None, load_before: str) -> None:
    images = charts(runs, args.mode)
    block = mode_block(runs, result, args, command, seed_command, load_before, images)
    begin = f"<!-- incident_replay {args.mode}: begin"
    end = f"<!-- incident_replay {args.mode}: end -->"
    previous = DOC.read_text() if DOC.exists() else (
        "# The 10 April incident, replayed\n\n"
        "The sections below are written by `bench/incident_replay.py --write` from real runs.\n\n"
        f"{KEPT_MARKER}\n")
    if begin in previous and end in previous:
        head, rest = previous.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        head, marker, tail = previous.partition(KEPT_MARKER)
        text = f"{head.rstrip()}\n\n{block}\n{marker}{tail}"
    DOC.write_text(text)
    from bench_report import replace_block

    replace_block(BENCHMARKS, BENCH_BEGIN, BENCH_END,
                   bench_block(runs, result, args, command, load_before))
