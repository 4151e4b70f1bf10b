"""The fast C-API path and the public-API fallback give identical results and faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cms.runtime import Limits, PluginFault, Runtime
from cms.runtime.engine import WASMTIME_VERSION, wasmtime_version
from plugin_sdk.abi import pack
from tests.runtime import guests
from tests.runtime.conftest import make_runtime
from tests.runtime.test_faults import LEAK_THEN_CRASH, LEAK_THEN_WRITE_THROUGH_NULL, SPIN
from tests.runtime.test_host import OPS

MIB = 1024 * 1024
CATALOG: dict[str, tuple[bytes, Limits | None]] = {
    "echo": (guests.module(), None),
    "ok-false": (guests.constant(b'{"ok":false,"error":{"code":"x","message":"y"}}'), None),
    "fuel": (guests.module(handle=SPIN), Limits(fuel=200_000)),
    "leak-null": (guests.module(handle=LEAK_THEN_WRITE_THROUGH_NULL), Limits(memory_bytes=2 * MIB)),
    "leak-crash": (guests.module(handle=LEAK_THEN_CRASH), Limits(memory_bytes=2 * MIB)),
    "unreachable": (guests.returning("unreachable"), None),
    "out-of-bounds": (guests.returning(f"(i64.const {pack(70000, 10)})"), None),
    "not-json": (guests.constant(b"nope"), None),
    "host-ok": (guests.host_caller([{"op": "test.echo", "args": {"a": 1}}]), None),
    "host-denied": (guests.host_caller([{"op": "test.boom"}]), None),
}


def outcome(runtime: Runtime, wasm: bytes, limits: Limits | None) -> dict[str, Any]:
    plugin = runtime.load(wasm, plugin_id="p", version="1", limits=limits,
                          grants=frozenset({"log"}))
    try:
        result = plugin.call("go", {"n": 1})
        stats, found = result.stats, {"output": result.output}
    except PluginFault as fault:
        assert fault.stats is not None
        stats, found = fault.stats, {"kind": fault.kind, "message": fault.message}
    return {**found, "fuel": stats.fuel_consumed, "memory": stats.peak_memory_bytes,
            "host_calls": stats.host_calls}


@pytest.mark.parametrize("name", list(CATALOG))
def test_both_paths_agree(tmp_path: Path, name: str) -> None:
    wasm, limits = CATALOG[name]
    fast = outcome(make_runtime(tmp_path, "fast", OPS), wasm, limits)
    public = outcome(make_runtime(tmp_path, "public", OPS), wasm, limits)
    assert fast == public


def test_auto_takes_the_fast_path_only_on_the_pinned_version(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, "auto")
    assert runtime.backend == ("fast" if wasmtime_version() == WASMTIME_VERSION else "public")
