"""`cms-plugin run`: call a module once in the production sandbox and print its output."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import click

from plugin_sdk import abi
from plugin_sdk.cli.common import UsageProblem, cache_dir, fault_exit

WASM_MAGIC = b"\0asm"


def _read_module(path: Path) -> bytes:
    """The wasm bytes of MODULE (.wasm, or .wat text); UsageProblem when it is not a module."""
    import wasmtime

    from cms.runtime.results import one_line

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageProblem(f"{path}: is a directory, not a .wasm file") from None
    except OSError as exc:
        raise UsageProblem(f"{path}: cannot read ({exc.strerror})") from None
    if path.suffix == ".wat":
        try:
            return bytes(wasmtime.wat2wasm(data.decode("utf-8")))
        except (UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
            raise UsageProblem(f"{path}: not valid WAT: {one_line(exc)}") from None
    if not data.startswith(WASM_MAGIC):
        raise UsageProblem(f"{path}: not a WebAssembly module (no \\0asm header)")
    try:
        wasmtime.Module.validate(wasmtime.Engine(), data)
    except wasmtime.WasmtimeError as exc:
        raise UsageProblem(f"{path}: not a valid WebAssembly module: {one_line(exc)}") from None
    return data


def _json_arg(text: str, what: str) -> Any:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageProblem(f"{what}: cannot read {text[1:]} ({exc.strerror})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageProblem(f"{what} is not valid JSON: {exc}") from None


@click.command()
@click.argument("module", type=click.Path(path_type=Path))
@click.option("--action", default="run", show_default=True, help="The action to call.")
@click.option("--params", "params_text", default="{}", metavar="JSON|@FILE",
              help="The action's params (a JSON object).")
@click.option("--context", "context_text", default="{}", metavar="JSON|@FILE",
              help="The call context (agent, client) as a JSON object.")
@click.option("--input", "input_text", metavar="JSON|@FILE",
              help="The whole input envelope; replaces --action, --params and --context.")
@click.option("--fuel", type=click.IntRange(1, 1_000_000_000),
              help="Fuel for the call (default 50,000,000).")
@click.option("--memory-mb", type=click.IntRange(1, 128), help="Memory cap in MiB (default 16).")
@click.option("--timeout-ms", type=click.IntRange(1, 10_000),
              help="Wall-clock deadline in ms (default 1,000).")
@click.option("--grant", "grants", multiple=True, metavar="CAPABILITY",
              help="Grant a capability (repeatable), e.g. --grant log.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def run(module: Path, action: str, params_text: str, context_text: str, input_text: str | None,
        fuel: int | None, memory_mb: int | None, timeout_ms: int | None, grants: tuple[str, ...],
        as_json: bool) -> None:
    """Call MODULE once in a fresh sandbox and print its output JSON.

    Exit 0 with the output on stdout; 3 on a plugin fault; 2 on bad usage.
    """
    from cms.runtime import (DEFAULT_CAPS, DEFAULT_LIMITS, EnvelopeError, LimitsError, PluginFault,
                             Runtime, RuntimeConfig)

    wasm = _read_module(module)
    if input_text is not None:
        try:
            data = json.dumps(_json_arg(input_text, "--input"), separators=(",", ":"),
                              ensure_ascii=False).encode("utf-8")
            envelope = abi.check_input(data)
        except EnvelopeError as exc:
            raise UsageProblem(f"--input: {exc}") from None
        context = envelope.get("context", {})
    else:
        params, context = _json_arg(params_text, "--params"), _json_arg(context_text, "--context")
        if not isinstance(params, dict) or not isinstance(context, dict):
            raise UsageProblem("--params and --context must be JSON objects")
        try:
            data = abi.encode_input(action, params, context)
        except EnvelopeError as exc:
            raise UsageProblem(str(exc)) from None
    try:
        requested = {k: v for k, v in (("fuel", fuel), ("memory_mb", memory_mb),
                                        ("timeout_ms", timeout_ms)) if v is not None}
        limits = DEFAULT_LIMITS.with_requests(requested, DEFAULT_CAPS)
    except LimitsError as exc:
        raise UsageProblem(str(exc)) from None
    if not as_json:  # the plugin's own log lines (cms.log) go to stderr for the author
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("plugin log %(levelname)s: %(message)s"))
        plugin_log = logging.getLogger("cms.plugins")
        plugin_log.addHandler(handler)
        plugin_log.setLevel(logging.DEBUG)
    runtime = Runtime(RuntimeConfig(artifact_dir=cache_dir(), compile_missing=True))
    try:
        plugin = runtime.load(wasm, plugin_id=module.stem, version="dev", limits=limits,
                              grants=frozenset(grants))
        result = plugin.call_raw(data, context)
    except PluginFault as fault:
        fault_exit(fault, as_json)
    except EnvelopeError as exc:
        raise UsageProblem(str(exc)) from None
    click.echo(json.dumps(result.output, ensure_ascii=False, indent=None if as_json else 2))
    if not as_json:
        s = result.stats
        click.echo(f"fuel {s.fuel_consumed:,} · memory {s.peak_memory_bytes // 1024:,} KiB · "
                   f"{s.wall_ms:.2f} ms · {s.host_calls} host calls", err=True)
