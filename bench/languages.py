"""The SDK's four guest languages side by side: the softphone in C and its twins in Zig,
TypeScript (AssemblyScript) and Rust (plugins_src/twins), which tests/sdk/test_twins.py proves
answer identically. Module size, fuel and wall time per action, measured in one run.

    .venv/bin/python bench/languages.py [--json] [--write] [--quick]

Each module is compiled from its current source. For each ported action every softphone vector
of it is called with its host answers, in fresh sandboxes as production does, the languages
interleaved round by round so machine noise hits them alike. Fuel is exact (the same every
call); time is the median µs per call over the rounds. --write replaces the "## Guest
languages" block of docs/benchmarks.md.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_report import load_average, machine, replace_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench/languages.py --write: begin -->", "<!-- bench/languages.py --write: end -->"
LANGS = {"c": "C", "zig": "Zig", "ts": "TypeScript", "rust": "Rust"}
C_FOLDER = ROOT / "plugins_src" / "softphone"


def folder(lang: str) -> Path:
    return C_FOLDER if lang == "c" else ROOT / "plugins_src" / "twins" / f"softphone-{lang}"


def harnesses(work: Path, langs: list[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """A Harness per language, from a fresh build of its source, and the module sizes."""
    from plugin_sdk.manifest import load_manifest
    from plugin_sdk.testing import Harness
    from plugin_sdk.toolchain import compile_module

    built, sizes = {}, {}
    for lang in langs:
        manifest = load_manifest(folder(lang))
        wasm = compile_module(lang, folder(lang) / str(manifest.build_source),  # type: ignore[arg-type]
                              work / f"{lang}.wasm", folder(lang))
        built[lang] = Harness(wasm, manifest, work / f"artifacts-{lang}")
        sizes[lang] = len(wasm)
    return built, sizes


def measure(built: dict[str, Any], sizes: dict[str, int], rounds: int) -> dict[str, Any]:
    from plugin_sdk.manifest import load_manifest
    from plugin_sdk.testing import KvStore, Script
    from plugin_sdk.vectors import load_vectors

    twin_actions = set(load_manifest(folder("zig")).actions)
    vectors = [v for v in load_vectors(C_FOLDER, load_manifest(C_FOLDER)) if v.action in twin_actions]
    actions = sorted({v.action for v in vectors})
    fuel: dict[tuple[str, str], list[int]] = {}
    micros: dict[tuple[str, str], list[float]] = {}
    for lang, harness in built.items():  # warm: compile the artifacts, fill the sandbox pools
        for vector in vectors:
            harness.call(vector.action, vector.params, vector.context, Script(vector.host, KvStore()))
    for _ in range(rounds):
        for vector in vectors:
            for lang, harness in built.items():
                script = Script(vector.host, KvStore())
                started = time.perf_counter()
                result = harness.call(vector.action, vector.params, vector.context, script)
                elapsed = (time.perf_counter() - started) * 1e6
                micros.setdefault((lang, vector.action), []).append(elapsed)
                fuel.setdefault((lang, vector.action), []).append(result.stats.fuel_consumed)
    table: dict[str, Any] = {"bytes": sizes, "actions": {},
                             "vectors": len(vectors)}
    for action in actions:
        table["actions"][action] = {lang: {"fuel": int(statistics.median(fuel[(lang, action)])),
                                           "us": round(statistics.median(micros[(lang, action)]), 1)}
                                    for lang in built}
    return table


def render(table: dict[str, Any], argv: list[str], rounds: int, before: str) -> str:
    langs = list(table["bytes"])
    head = " | ".join(LANGS[lang] for lang in langs)
    size = " | ".join(f"{table['bytes'][lang]:,} ({table['bytes'][lang] / table['bytes']['c']:.2f}x)"
                      for lang in langs)
    fuel_rows, time_rows = [], []
    for action, per in table["actions"].items():
        c = per["c"]
        fuel_rows.append(f"| {action} | " + " | ".join(
            f"{per[lang]['fuel']:,} ({per[lang]['fuel'] / c['fuel']:.2f}x)" for lang in langs) + " |")
        time_rows.append(f"| {action} | " + " | ".join(
            f"{per[lang]['us']:.0f} ({per[lang]['us'] / c['us']:.2f}x)" for lang in langs) + " |")
    align = "|---|" + "---:|" * len(langs)
    return f"""{BEGIN}

## Guest languages

The softphone in C and its twins in Zig, TypeScript (AssemblyScript) and Rust
(plugins_src/twins; tests/sdk/test_twins.py proves every one answers the softphone's vectors
exactly as the C module does). Each built from its current source in this run; every softphone
vector of the ported actions ({table['vectors']} vectors) called {rounds} times per language in fresh
sandboxes, the languages interleaved; ratios are against C in the same run.

- Command: `{shlex.join(['.venv/bin/python', 'bench/languages.py', *argv])}`
- Machine: {machine()}; load average {before} before, {load_average()} after

Module size (bytes):

| | {head} |
{align}
| module | {size} |

Fuel per call (median over the action's vectors and rounds; exact, the same on any machine):

| action | {head} |
{align}
{chr(10).join(fuel_rows)}

Wall time per call, µs (median; includes the sandbox and the host's answers):

| action | {head} |
{align}
{chr(10).join(time_rows)}

{END}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for a smoke test)")
    parser.add_argument("--langs", default=",".join(LANGS),
                        help=f"comma-separated, C first (default {','.join(LANGS)})")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    before = load_average()
    rounds = 5 if args.quick else 60
    langs = args.langs.split(",")
    if langs[0] != "c" or not set(langs) <= set(LANGS):
        parser.error(f"--langs: C first, then any of {', '.join(LANGS)}")
    with tempfile.TemporaryDirectory(prefix="languages-") as tmp:
        built, sizes = harnesses(Path(tmp), langs)
        try:
            table = measure(built, sizes, rounds)
        finally:
            for harness in built.values():
                harness.close()
    if args.json:
        print(json.dumps(table))
    text = render(table, argv, rounds, before)
    if args.write:
        replace_block(BENCHMARKS, BEGIN, END, text)
    if not args.json:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
