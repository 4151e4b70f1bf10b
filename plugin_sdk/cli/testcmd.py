"""`cms-plugin test`: the plugin's test vectors, then a soak with the leak detector, in the
production sandbox."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from plugin_sdk.cli.common import (EXIT_TEST_FAILURE, UsageProblem, cache_dir, console, emit_json,
                                   fault_exit, json_option)
from plugin_sdk.cli.locate import locate

DEFAULT_SOAK = 1_000


@click.command()
@click.argument("target", type=click.Path(path_type=Path), default=".")
@click.option("--soak", "soak_calls", type=click.IntRange(0, 100_000), default=DEFAULT_SOAK,
              show_default=True, help="Calls per action in the soak (0 skips it).")
@click.option("--chaos", is_flag=True,
              help="Also run every vector with host calls failing, then timing out; the plugin "
                   "must answer (ok or ok:false), never fault.")
@json_option
def test(target: Path, soak_calls: int, chaos: bool, as_json: bool) -> None:
    """Run the plugin's test vectors, then soak each action and fail on a leak.

    The soak makes N calls per action with one kv store kept across them and fails when fuel or
    peak memory per call keeps growing. Prints fuel, memory and time per action. Exit 1 on any
    failure.
    """
    from cms.runtime import PluginFault
    from plugin_sdk.testing import Harness

    located = locate(target)
    if not located.vectors:
        raise UsageProblem(f"{located.where}: no test vectors in {located.manifest.tests}/*.json")
    harness = Harness(located.wasm, located.manifest, cache_dir())
    try:
        outcomes = [harness.run_vector(v) for v in located.vectors]
        chaos_outcomes = ([(mode, harness.run_vector(v, mode)) for mode in ("fail", "timeout")
                           for v in located.vectors if v.expect.fault is None]
                          if chaos else [])
        soaks = _soak(harness, located, soak_calls, as_json) if soak_calls else []
    except PluginFault as fault:  # the module cannot even load
        fault_exit(fault, as_json)
    finally:
        harness.close()
    failures = ([o.problem for o in outcomes if o.problem]
                + [f"chaos {mode}: {o.vector.label}: {o.problem}" for mode, o in chaos_outcomes
                   if o.problem]
                + [f"soak {s.action}: {s.problem}" for s in soaks if s.problem]
                + located.problems)
    if as_json:
        emit_json({
            "ok": not failures, "plugin": located.manifest.id, "version": located.manifest.version,
            "vectors": [{"name": o.vector.name, "file": o.vector.file, "action": o.vector.action,
                         "passed": o.passed, "problem": o.problem, "fault": o.fault,
                         "fuel": o.fuel, "memory_bytes": o.memory, "ms": o.wall_ms,
                         "host_calls": o.host_calls} for o in outcomes],
            "chaos": [{"mode": mode, "name": o.vector.name, "passed": o.passed,
                       "problem": o.problem,
                       "answered_ok": o.output["ok"] if o.output else None}
                      for mode, o in chaos_outcomes],
            "soak": [s.summary() for s in soaks],
            "failures": failures,
        })
    else:
        _print(located, outcomes, chaos_outcomes, soaks, failures)
    if failures:
        sys.exit(EXIT_TEST_FAILURE)


def _soak(harness: Any, located: Any, calls: int, quiet: bool) -> list[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    actions = {v.action for v in located.vectors if v.expect.fault is None}
    with Progress(TextColumn("soak {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console(stderr=True), transient=True,
                  disable=quiet) as progress:
        tasks = {a: progress.add_task(a, total=calls) for a in sorted(actions)}
        return list(harness.soak(located.vectors, calls,
                                 lambda action, done: progress.update(tasks[action], completed=done)))


def _print(located: Any, outcomes: list[Any], chaos: list[Any], soaks: list[Any],
           failures: list[str]) -> None:
    from rich.table import Table

    out = console()
    m = located.manifest
    out.print(f"[bold]{m.id} {m.version}[/] in the production sandbox "
              f"(capabilities: {', '.join(sorted(m.capabilities)) or 'none'})")
    for o in outcomes:
        mark = "[green]✓[/]" if o.passed else "[red]✗[/]"
        what = f"fault {o.fault}" if o.fault else (
            "ok" if o.output and o.output["ok"] else f"ok:false {o.output['error']['code']}"
            if o.output else "")
        out.print(f"{mark} {o.vector.label} [dim]({what}, fuel {o.fuel:,}, "
                  f"{o.memory // 1024:,} KiB)[/]")
        if o.problem:
            out.print(f"    [red]{o.problem}[/]")
    if chaos:
        graceful = sum(1 for _, o in chaos if o.passed)
        colour = "green" if graceful == len(chaos) else "red"
        out.print(f"[{colour}]chaos: {graceful} of {len(chaos)} runs with failing or slow host "
                  f"calls answered gracefully[/]")
        for mode, o in chaos:
            if o.problem:
                out.print(f"    [red]{mode}: {o.vector.label}: {o.problem}[/]")
    if soaks:
        table = Table(title=f"soak: {soaks[0].calls:,} calls per action")
        for column in ("action", "calls", "fuel p50", "fuel max", "peak memory", "ms p50",
                       "ms p95", "growth fuel / mem", "verdict"):
            table.add_column(column, justify="left" if column in ("action", "verdict") else "right")
        for s in soaks:
            d = s.summary()
            table.add_row(s.action, f"{d['calls']:,}", f"{d['fuel_p50']:,}", f"{d['fuel_max']:,}",
                          f"{d['memory_peak_bytes'] // 1024:,} KiB", f"{d['ms_p50']:.3f}",
                          f"{d['ms_p95']:.3f}", f"{d['fuel_growth']:.2f}x / {d['memory_growth']:.2f}x",
                          "[red]" + s.problem + "[/]" if s.problem else "[green]steady[/]")
        out.print(table)
    for problem in located.problems:
        out.print(f"[red]✗ {problem}[/]")
    passed = sum(1 for o in outcomes if o.passed)
    out.print(f"[{'green' if not failures else 'red'}]{passed} of {len(outcomes)} vectors passed"
              f"{'' if not failures else f'; {len(failures)} failure(s)'}[/]")
