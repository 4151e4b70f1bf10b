"""Plugin call benchmark: a fresh-sandbox CMS plugin call against extism-py and plain Python.

Run manually (not part of the test suite; needs extism, a dev dependency):

    .venv/bin/python bench/plugin_call.py [--quick] [--json] [--write]

One run measures, as medians over interleaved repeats, the per-call time of the same echo work
({"ok": true, "echo": <200-byte input envelope>}) five ways: `Plugin.call` of the CMS runtime
(fresh Store and instance per call, all limits set) on its fast path and on the public-API
fallback, extism-py with a fresh `Plugin` per call from one `CompiledPlugin`, extism-py reusing
one `Plugin`, and a plain Python function. It then measures RSS in fresh interpreters (so extism
is not in them): after loading three stand-in plugins, and over 100,000 calls. It prints a
table, or with --json one JSON object; --write also replaces the "## Plugin calls" block of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
WAT_DIR = Path(__file__).resolve().parent / "wat"
DOC = REPO / "docs" / "benchmarks.md"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import load_average, machine, replace_block  # noqa: E402  (sibling module; bench/ is no package)

FRESH_CALL_GOAL_US = 40.0
RATIO_GOAL = 0.25
RSS_GOAL_MB = 60.0
#: "Flat": RSS may grow by less than this between 10,000 and 100,000 calls.
RSS_FLAT_MB = 3.0
INPUT_BYTES = 200
RSS_CALLS = 100_000
RSS_CHECKPOINT = 10_000

BLOCK_BEGIN = "<!-- bench/plugin_call.py --write: begin (generated; replaced on every --write) -->"
BLOCK_END = "<!-- bench/plugin_call.py --write: end -->"

ACTION = "echo"
CONTEXT: dict[str, Any] = {"agent": {"id": 17, "agency_id": 3, "role": "agent"}}

#: Stand-ins for the bundled plugins (none are built yet): name -> grants.
STAND_INS: dict[str, frozenset[str]] = {
    "echo": frozenset(), "count": frozenset(), "logline": frozenset({"log"}),
}


def wasm_of(name: str) -> bytes:
    """The binary module of bench/wat/<name>.wat."""
    import wasmtime

    return bytes(wasmtime.wat2wasm((WAT_DIR / f"{name}.wat").read_text()))


def bench_params() -> dict[str, Any]:
    """Params that make the input envelope exactly INPUT_BYTES bytes of JSON."""
    from plugin_sdk import abi

    base = len(abi.encode_input(ACTION, {"text": ""}, CONTEXT))
    return {"text": "x" * (INPUT_BYTES - base)}


def python_echo(data: bytes) -> bytes:
    """The plugins' work in plain Python: parse the input, wrap it, serialize."""
    return json.dumps({"ok": True, "echo": json.loads(data)}, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


@dataclass
class Variant:
    """One way of making the call; `call()` does the whole round trip and returns the output."""

    key: str
    label: str
    call: Callable[[], dict[str, Any]]


def build_variants(work_dir: Path) -> tuple[list[Variant], str]:
    """The five variants, each checked to give the same output; also extism's version text.

    Every variant encodes the input with `abi.encode_input` and (except `Plugin.call`, which does
    it itself) decodes the output with `abi.decode_output`, so only the sandbox differs.
    """
    import extism
    from extism.extism import CompiledPlugin  # not re-exported by extism 1.1.1's __init__

    from cms.runtime import Runtime, RuntimeConfig
    from plugin_sdk import abi

    params = bench_params()
    wasm = wasm_of("echo")
    plugins = {}
    for backend in ("fast", "public"):
        runtime = Runtime(RuntimeConfig(artifact_dir=work_dir / f"artifacts-{backend}",
                                        backend=backend, compile_missing=True))
        runtime.compile(wasm)
        plugins[backend] = runtime.load(wasm, plugin_id="echo", version="1.0.0")
    fast, public = plugins["fast"], plugins["public"]

    # The same limits the CMS sets, as far as extism-py exposes them: 16 MiB of memory (256
    # pages) and a 1,000 ms timeout. extism-py 1.1.1 has no fuel limit (only the C API has one).
    manifest = {"wasm": [{"data": wasm_of("extism_echo")}], "memory": {"max_pages": 256},
                "timeout_ms": 1000}
    compiled = CompiledPlugin(manifest)
    reused = extism.Plugin(compiled)
    encode, decode = abi.encode_input, abi.decode_output

    def cms_fast() -> dict[str, Any]:
        return fast.call(ACTION, params, CONTEXT).output

    def cms_public() -> dict[str, Any]:
        return public.call(ACTION, params, CONTEXT).output

    def extism_fresh() -> dict[str, Any]:
        return decode(extism.Plugin(compiled).call("echo", encode(ACTION, params, CONTEXT)))

    def extism_reused() -> dict[str, Any]:
        return decode(reused.call("echo", encode(ACTION, params, CONTEXT)))

    def python() -> dict[str, Any]:
        return decode(python_echo(encode(ACTION, params, CONTEXT)))

    variants = [
        Variant("fresh_call_us", "CMS Plugin.call, fresh sandbox (fast path)", cms_fast),
        Variant("public_api_call_us", "CMS Plugin.call, fresh sandbox (backend=public)",
                cms_public),
        Variant("extism_fresh_call_us", "extism-py, Plugin(CompiledPlugin) per call", extism_fresh),
        Variant("extism_reused_call_us", "extism-py, one reused Plugin", extism_reused),
        Variant("python_call_us", "plain Python function", python),
    ]
    expected = {"ok": True, "echo": json.loads(encode(ACTION, params, CONTEXT))}
    for variant in variants:
        got = variant.call()
        if got != expected:
            raise SystemExit(f"{variant.label} gave {got!r}, expected {expected!r}")
    return variants, f"extism-py {_dist_version('extism')} (runtime {extism.extism_version()})"


def code_version() -> str:
    """The commit of HEAD, noting uncommitted changes to the runtime or the ABI."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "cms/runtime", "plugin_sdk")
    note = " with uncommitted changes in cms/runtime or plugin_sdk" if dirty else ""
    return f"`{commit}`{note}"


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def measure(variants: list[Variant], repeats: int, calls: int) -> dict[str, list[float]]:
    """µs per call of each variant in each repeat; variants alternate, in a rotated order."""
    samples: dict[str, list[float]] = {v.key: [] for v in variants}
    for variant in variants:  # warm-up: caches, pooling-allocator slots, branch predictors
        for _ in range(min(calls, 200)):
            variant.call()
    for repeat in range(repeats):
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            call = variant.call
            started = time.perf_counter_ns()
            for _ in range(calls):
                call()
            samples[variant.key].append((time.perf_counter_ns() - started) / calls / 1000)
    return samples


# ---- RSS, in fresh interpreters ----------------------------------------------------------------

def rss_mb() -> float:
    """This process's resident set size (VmRSS) in MB."""
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def rss_child(work_dir: Path, with_app: bool) -> dict[str, Any]:
    """Run in a fresh interpreter: load the stand-ins from prebuilt artifacts, call them.

    Without `with_app`: RSS after import, after load, after RSS_CHECKPOINT and RSS_CALLS calls
    (rotating over the plugins). With it: a CMS app is created first (SQLite in memory, no
    requests) and the plugins are loaded into its Runtime and called 1,000 times.
    """
    started = rss_mb()
    from cms.runtime import Runtime, RuntimeConfig

    imported = rss_mb()
    flask_imported = "flask" in sys.modules
    if with_app:  # the app's own Runtime, as a worker has it
        from cms import create_app
        from cms.config import Settings

        app = create_app(Settings(database_url="sqlite://", secret_key="b" * 48,
                                  instance_path=work_dir / "instance",
                                  plugin_artifact_dir=work_dir / "artifacts"))
        runtime: Runtime = app.extensions["cms"].runtime
    else:
        runtime = Runtime(RuntimeConfig(artifact_dir=work_dir / "artifacts"))  # never compiles
    plugins = [runtime.load((work_dir / f"{name}.wasm").read_bytes(), plugin_id=name,
                            version="1.0.0", grants=grants)
               for name, grants in STAND_INS.items()]
    loaded = rss_mb()
    params = bench_params()
    result = {"rss_start_mb": started, "rss_after_import_mb": imported, "rss_after_load_mb": loaded,
              "flask_imported": flask_imported}
    total = 1_000 if with_app else RSS_CALLS
    for i in range(total):
        plugins[i % len(plugins)].call(ACTION, params, CONTEXT)
        if i + 1 == RSS_CHECKPOINT:
            result["rss_after_10k_mb"] = rss_mb()
    result["rss_after_calls_mb"] = rss_mb()
    return result


def run_rss(work_dir: Path, with_app: bool) -> dict[str, Any]:
    """Prebuild the stand-ins' artifacts here, then run `rss_child` in a new interpreter."""
    from cms.runtime import Runtime, RuntimeConfig

    runtime = Runtime(RuntimeConfig(artifact_dir=work_dir / "artifacts"))
    for name in STAND_INS:
        wasm = wasm_of(name)
        (work_dir / f"{name}.wasm").write_bytes(wasm)
        runtime.compile(wasm)
    command = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(work_dir)]
    if with_app:
        command.append("--with-app")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"RSS child failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---- report ------------------------------------------------------------------------------------

def collect(quick: bool) -> tuple[dict[str, Any], dict[str, list[float]], list[Variant], str]:
    """Run everything; the JSON result, the raw samples, the variants and extism's version."""
    repeats, calls = (3, 300) if quick else (7, 2_000)
    with tempfile.TemporaryDirectory(prefix="plugin-bench-") as tmp:
        work = Path(tmp)
        variants, extism_text = build_variants(work / "timing")
        samples = measure(variants, repeats, calls)
        (work / "rss").mkdir()
        (work / "app").mkdir()
        rss = run_rss(work / "rss", with_app=False)
        app = run_rss(work / "app", with_app=True)
    from plugin_sdk import abi

    medians = {key: statistics.median(values) for key, values in samples.items()}
    result: dict[str, Any] = {
        "fresh_call_us": round(medians["fresh_call_us"], 1),
        "extism_fresh_call_us": round(medians["extism_fresh_call_us"], 1),
        "extism_reused_call_us": round(medians["extism_reused_call_us"], 1),
        "python_call_us": round(medians["python_call_us"], 1),
        "ratio_vs_extism_fresh": round(
            medians["fresh_call_us"] / medians["extism_fresh_call_us"], 3),
        "public_api_call_us": round(medians["public_api_call_us"], 1),
        "rss_after_import_mb": round(rss["rss_after_import_mb"], 1),
        "rss_after_load_mb": round(rss["rss_after_load_mb"], 1),
        "rss_after_10k_mb": round(rss["rss_after_10k_mb"], 1),
        "rss_after_100k_mb": round(rss["rss_after_calls_mb"], 1),
        "rss_worker_with_app_mb": round(app["rss_after_calls_mb"], 1),
        "rss_start_mb": round(rss["rss_start_mb"], 1),
        "runtime_import_loads_flask": rss["flask_imported"],
        "input_bytes": len(abi.encode_input(ACTION, bench_params(), CONTEXT)),
        "repeats": repeats,
        "calls_per_repeat": calls,
    }
    return result, samples, variants, extism_text


def table(result: dict[str, Any], samples: dict[str, list[float]], variants: list[Variant]) -> str:
    extism_fresh = result["extism_fresh_call_us"]
    lines = ["| variant | median µs/call | fastest repeat | slowest repeat | vs extism fresh |",
             "|---|---:|---:|---:|---:|"]
    for v in variants:
        median = statistics.median(samples[v.key])
        lines.append(f"| {v.label} | {median:.1f} | {min(samples[v.key]):.1f} | "
                     f"{max(samples[v.key]):.1f} | {median / extism_fresh:.2f}x |")
    return "\n".join(lines)


def rss_table(result: dict[str, Any]) -> str:
    return "\n".join([
        "| RSS of a fresh interpreter | MB |",
        "|---|---:|",
        "| at start (Python and the bench script's stdlib imports) | "
        f"{result['rss_start_mb']:.1f} |",
        f"| after `from cms.runtime import ...` | {result['rss_after_import_mb']:.1f} |",
        f"| after Runtime + loading the 3 stand-in plugins | {result['rss_after_load_mb']:.1f} |",
        f"| after {RSS_CHECKPOINT:,} calls | {result['rss_after_10k_mb']:.1f} |",
        f"| after {RSS_CALLS:,} calls | {result['rss_after_100k_mb']:.1f} |",
        "| with the CMS app created first (`create_app`, SQLite in memory), the plugins loaded "
        f"into its Runtime, 1,000 calls | {result['rss_worker_with_app_mb']:.1f} |",
    ])


def goals(result: dict[str, Any]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    growth = result["rss_after_100k_mb"] - result["rss_after_10k_mb"]
    return "\n".join([
        f"- fresh-sandbox call: **{result['fresh_call_us']:.1f} µs** (goal <= "
        f"{FRESH_CALL_GOAL_US:.0f} µs: {verdict(result['fresh_call_us'] <= FRESH_CALL_GOAL_US)})",
        "- fresh-sandbox call / extism-py fresh plugin call: "
        f"**{result['ratio_vs_extism_fresh']:.3f}** (goal <= {RATIO_GOAL}: "
        f"{verdict(result['ratio_vs_extism_fresh'] <= RATIO_GOAL)})",
        f"- RSS after loading the plugins: **{result['rss_after_load_mb']:.1f} MB** (goal <= "
        f"{RSS_GOAL_MB:.0f} MB: {verdict(result['rss_after_load_mb'] <= RSS_GOAL_MB)}); with the "
        f"CMS app in the same process it is {result['rss_worker_with_app_mb']:.1f} MB "
        f"({verdict(result['rss_worker_with_app_mb'] <= RSS_GOAL_MB)} for that process)",
        f"- RSS from {RSS_CHECKPOINT:,} to {RSS_CALLS:,} calls: **{growth:+.1f} MB** (goal: flat, "
        f"< {RSS_FLAT_MB:.0f} MB: {verdict(growth < RSS_FLAT_MB)})",
    ])


def section(result: dict[str, Any], samples: dict[str, list[float]], variants: list[Variant],
            extism_text: str, command: str, load_before: str) -> str:
    """The generated "## Plugin calls" block of docs/benchmarks.md, markers included."""
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flask_note = ("Importing `cms.runtime` loaded Flask too (through the `cms` package), so the "
                  "import figure includes Flask." if result["runtime_import_loads_flask"] else
                  "Importing `cms.runtime` did not load Flask.")
    return f"""{BLOCK_BEGIN}

## Plugin calls

Written by `bench/plugin_call.py --write` from a real run.

- Date: {today}
- Command: `{command}`
- Machine: {machine()}
- Load average (1, 5, 15 min): {load_before} before the run, {load_average()} after
- Code: {code_version()}
- Versions: wasmtime-py {_dist_version('wasmtime')}, {extism_text}
- Work: an echo plugin answering `{{"ok":true,"echo":<input>}}` for a {result['input_bytes']}-byte \
JSON input envelope; {result['repeats']} repeats x {result['calls_per_repeat']:,} calls per variant

{table(result, samples, variants)}

{rss_table(result)}

{goals(result)}

Methodology: every variant runs in the same process and the same run; each repeat times a batch
of calls of every variant in turn (the order rotates between repeats, after a short warm-up), and
the table gives the median of the per-repeat means, so ratios compare like with like. Every
variant does the whole round trip: `abi.encode_input` of the same action, params and context,
the echo (in wasm, or in Python for the baseline), and parsing and checking the output
(`abi.decode_output`); `Plugin.call` does both itself. The CMS calls use a fresh Store and
instance per call with every default limit set (50 M fuel, 16 MiB memory, 1,000 ms deadline).
extism-py gets the limits its Python API offers (`memory.max_pages` 256 and `timeout_ms` 1,000
in the manifest); it exposes no fuel limit (the C API has one; extism-py 1.1.1 does not wrap it),
and `CompiledPlugin` is not re-exported by its package (`extism.extism.CompiledPlugin`). The
plugins are hand-written WAT in `bench/wat/` (`echo.wat` for the CMS ABI, `extism_echo.wat` for
Extism's kernel ABI). RSS is VmRSS from /proc/self/status in new interpreters that never import
extism and only deserialize prebuilt artifacts, as a worker does. No plugins are bundled yet, so
three stand-ins are loaded: `echo`, `count` (scans the input, writes two numbers) and `logline`
(one `cms.log` host call); the 100,000 calls rotate over the three. {flask_note}

{BLOCK_END}
"""


def write_section(block: str, path: Path = DOC) -> None:
    """Replace the generated block in `path`, or append it at the end (after the hand-written part).

    The block sits below bench_report.KEPT_MARKER, which `bench/http_bench.py --write` keeps
    verbatim, so the two generators do not clobber each other.
    """
    replace_block(path, BLOCK_BEGIN, BLOCK_END, block)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats x 300 calls instead of 7 x 2,000 "
                             "(the RSS run is unchanged)")
    parser.add_argument("--write", action="store_true",
                        help="replace the '## Plugin calls' block of docs/benchmarks.md")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--with-app", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_child is not None:
        print(json.dumps(rss_child(args.rss_child, args.with_app)))
        return 0
    load_before = load_average()
    command = shlex.join([".venv/bin/python", "bench/plugin_call.py", *sys.argv[1:]])
    result, samples, variants, extism_text = collect(args.quick)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result, samples, variants))
        print()
        print(rss_table(result))
        print()
        print(goals(result))
    if args.write:
        write_section(section(result, samples, variants, extism_text, command, load_before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
