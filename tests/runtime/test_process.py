"""The process around the sandbox: faults leave RSS flat, forks get their own engine, threads
get their own stores, and the epoch ticker runs wherever plugins run."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from cms.runtime import Limits, PluginFault, Runtime, RuntimeConfig
from plugin_sdk.abi import FaultKind
from tests.runtime import guests
from tests.runtime.conftest import load, make_runtime
from tests.runtime.test_faults import LEAK_THEN_WRITE_THROUGH_NULL, SPIN


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_thousand_faults_in_a_row_leave_rss_flat(runtime: Runtime) -> None:
    leak = load(runtime, guests.module(handle=LEAK_THEN_WRITE_THROUGH_NULL),
                Limits(memory_bytes=2 * 1024 * 1024))
    spin = load(runtime, guests.module(handle=SPIN), Limits(fuel=100_000))
    crash = load(runtime, guests.returning("unreachable"))
    plugins = [leak, spin, crash]

    def fault_round(count: int) -> set[str]:
        kinds = set()
        for n in range(count):
            with pytest.raises(PluginFault) as raised:
                plugins[n % 3].call("go", {"n": n})
            kinds.add(str(raised.value.kind))
        return kinds

    fault_round(300)  # warm up allocator pools and caches
    before = rss_bytes()
    kinds = fault_round(1000)
    growth = rss_bytes() - before
    assert kinds == {"memory_limit", "fuel_exhausted", "trap"}
    assert growth < 8 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB over 1000 faults"


def _child(artifact_dir: str, wasm: bytes, queue: "multiprocessing.Queue[object]") -> None:
    child = Runtime(RuntimeConfig(artifact_dir=Path(artifact_dir), compile_missing=True))
    plugin = child.load(wasm, plugin_id="echo", version="1.0.0")
    spin = child.load(guests.module(handle=SPIN), plugin_id="spin", version="1.0.0",
                      limits=Limits(fuel=10**9, timeout_ms=50))
    try:
        spin.call("go")
        timed_out = False
    except PluginFault as fault:
        timed_out = fault.kind == FaultKind.TIMEOUT
    queue.put((os.getpid(), plugin.call("hi", {"from": "child"}).output["echo"]["params"],
               timed_out, child.engines.ticker_alive()))


def test_a_forked_child_loads_and_calls_plugins(tmp_path: Path, backend: str) -> None:
    """The parent compiles and calls first (the fork hazard in WASMTIME_NOTES), then forks."""
    runtime = make_runtime(tmp_path, backend)
    wasm = guests.module()
    parent_plugin = runtime.load(wasm, plugin_id="echo", version="1.0.0")
    assert parent_plugin.call("hi").ok
    runtime.compile(guests.module(handle=SPIN))  # compiled in the parent, loaded in the child

    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[object] = context.Queue()
    process = context.Process(target=_child, args=(str(tmp_path / "artifacts"), wasm, queue))
    process.start()
    process.join(timeout=60)
    if process.is_alive():
        process.kill()
        pytest.fail("the forked child hung loading or calling a plugin")
    assert process.exitcode == 0
    pid, params, timed_out, ticker = queue.get(timeout=5)
    assert pid != os.getpid()
    assert params == {"from": "child"}
    assert timed_out and ticker

    # The same Plugin object, used in a forked child, rebuilds its engine there.
    def reuse(q: "multiprocessing.Queue[object]") -> None:
        q.put(parent_plugin.call("again", {"n": 2}).output["echo"]["params"])

    process = context.Process(target=reuse, args=(queue,))
    process.start()
    process.join(timeout=60)
    if process.is_alive():
        process.kill()
        pytest.fail("a plugin loaded before fork hung in the child")
    assert queue.get(timeout=5) == {"n": 2}
    assert parent_plugin.call("still", {"n": 3}).output["echo"]["params"] == {"n": 3}


def test_threads_call_the_same_plugin_with_their_own_stores(runtime: Runtime) -> None:
    plugin = load(runtime, guests.module())
    results: dict[int, list[object]] = {}

    def work(n: int) -> None:
        results[n] = [plugin.call("t", {"thread": n, "i": i}).output["echo"]["params"]
                      for i in range(200)]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert {n: len(r) for n, r in results.items()} == {n: 200 for n in range(4)}
    for n, outputs in results.items():
        assert outputs == [{"thread": n, "i": i} for i in range(200)]


def test_the_ticker_runs_once_the_engine_exists(runtime: Runtime) -> None:
    load(runtime, guests.module())
    assert runtime.engines.ticker_alive()
    assert runtime.engines.generation == os.getpid()
