"""What the grow watch (cms.runtime.growwatch) costs a plugin call, in one run against the same
module compiled without it.

    .venv/bin/python bench/grow_watch.py [--json] [--write]

For each bundled plugin (wasm/<id>), one action with no host calls is called in fresh sandboxes
through the fast path, alternating between the module as the runtime compiles it (every
memory.grow rewritten, two globals read after each call) and the same bytes compiled as they
are. Reports µs per call (median of repeats) and the ratio; --write replaces the "## Grow watch"
block of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_report import load_average, machine, replace_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench/grow_watch.py --write: begin -->", "<!-- bench/grow_watch.py --write: end -->"
#: An action per bundled plugin that answers from its params and context alone.
ACTIONS = {"softphone": ("toolbar", {}), "terminal": ("screen", {}), "mail": ("outbox", {})}
CONTEXT = {"agent": {"id": 7, "username": "a", "name": "A", "agency_id": 1},
           "now": "2026-12-04T10:00:00Z"}


def plugins(work: Path) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """(watched call, plain call) per plugin."""
    from cms.runtime import Runtime, RuntimeConfig, growwatch
    from plugin_sdk.manifest import load_manifest

    found = {}
    for plugin_id, (action, params) in ACTIONS.items():
        folder = ROOT / "wasm" / plugin_id
        wasm = (folder / (load_manifest(folder).module_file or "")).read_bytes()
        watched_rt = Runtime(RuntimeConfig(artifact_dir=work / "watched", compile_missing=True))
        watched = watched_rt.load(wasm, plugin_id=plugin_id, version="w")
        original = growwatch.instrument
        growwatch.instrument = lambda data: data  # type: ignore[assignment]
        try:
            plain_rt = Runtime(RuntimeConfig(artifact_dir=work / "plain", compile_missing=True))
            plain = plain_rt.load(wasm, plugin_id=plugin_id, version="p")
            plain.prepared()
        finally:
            growwatch.instrument = original
        assert watched.prepared().shape.refused_index is not None
        assert plain.prepared().shape.refused_index is None

        def call(p: Any = watched, a: str = action, q: dict[str, Any] = params) -> Any:
            return p.call(a, q, CONTEXT)

        def call_plain(p: Any = plain, a: str = action, q: dict[str, Any] = params) -> Any:
            return p.call(a, q, CONTEXT)

        assert call().output == call_plain().output
        found[plugin_id] = (call, call_plain)
    return found


def measure(calls: dict[str, tuple[Callable[[], Any], Callable[[], Any]]], repeats: int,
            per_repeat: int) -> dict[str, dict[str, float]]:
    result = {}
    for plugin_id, (watched, plain) in calls.items():
        samples: dict[str, list[float]] = {"watched": [], "plain": []}
        for fn in (watched, plain):
            for _ in range(50):
                fn()
        for repeat in range(repeats):
            order = [("watched", watched), ("plain", plain)]
            for name, fn in (order if repeat % 2 == 0 else order[::-1]):
                started = time.perf_counter()
                for _ in range(per_repeat):
                    fn()
                samples[name].append((time.perf_counter() - started) / per_repeat * 1e6)
        w, p = statistics.median(samples["watched"]), statistics.median(samples["plain"])
        result[plugin_id] = {"watched_us": round(w, 1), "plain_us": round(p, 1),
                             "ratio": round(w / p, 3)}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (for a smoke test)")
    args = parser.parse_args(argv)
    before = load_average()
    repeats, per_repeat = (3, 100) if args.quick else (9, 1000)
    with tempfile.TemporaryDirectory(prefix="grow-watch-") as tmp:
        result = measure(plugins(Path(tmp)), repeats, per_repeat)
    if args.json:
        print(json.dumps(result))
    rows = "\n".join(f"| {p} {ACTIONS[p][0]} | {r['watched_us']:.1f} | {r['plain_us']:.1f} | "
                     f"{r['ratio']:.3f}x |" for p, r in result.items())
    text = f"""{BEGIN}

## Grow watch

What rewriting every `memory.grow` (issue 14) costs a call: the bundled modules as the runtime
compiles them against the same bytes compiled as they are, alternating in one run, fresh sandbox
per call, fast path; medians of {repeats} repeats x {per_repeat:,} calls.

- Command: `{shlex.join(['.venv/bin/python', 'bench/grow_watch.py', *(argv or sys.argv[1:])])}`
- Machine: {machine()}; load average {before} before, {load_average()} after

| plugin action | watched µs/call | plain µs/call | watched / plain |
|---|---:|---:|---:|
{rows}

{END}"""
    if args.write:
        replace_block(BENCHMARKS, BEGIN, END, text)
    if not args.json:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
