"""Adversarial guests: each maps to exactly one fault kind and leaves the process healthy.

Every test runs on both call paths (fast C API and public API); the runtime fixture's teardown
checks that a good plugin still answers afterwards.
"""

from __future__ import annotations

import pytest

from cms.runtime import Limits, PluginFault, Runtime
from plugin_sdk.abi import FaultKind, pack
from tests.runtime import guests
from tests.runtime.conftest import load

MIB = 1024 * 1024


def fault_of(runtime: Runtime, wasm: bytes, limits: Limits | None = None) -> PluginFault:
    plugin = load(runtime, wasm, limits)
    with pytest.raises(PluginFault) as raised:
        plugin.call("go", {"x": 1})
    fault = raised.value
    assert fault.stats is not None and fault.stats.plugin_id == "guest"
    return fault


SPIN = """
  (func (export "cms_handle") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (i64.const 0))"""


def test_an_infinite_loop_runs_out_of_fuel(runtime: Runtime) -> None:
    fault = fault_of(runtime, guests.module(handle=SPIN))
    assert fault.kind == FaultKind.FUEL_EXHAUSTED
    assert fault.stats is not None and fault.stats.fuel_consumed == 50_000_000


def test_an_infinite_loop_with_fuel_to_spare_hits_the_deadline(runtime: Runtime) -> None:
    fault = fault_of(runtime, guests.module(handle=SPIN), Limits(fuel=10**9, timeout_ms=50))
    assert fault.kind == FaultKind.TIMEOUT
    assert fault.stats is not None and fault.stats.fuel_consumed < 10**9


def test_a_call_budget_shortens_the_deadline_never_lengthens_it(runtime: Runtime) -> None:
    from plugin_sdk.abi import encode_input

    # With its whole 5 s deadline, the loop would burn all 10^9 fuel first (fuel_exhausted):
    # a timeout shows that the 50 ms budget cut it short.
    plugin = load(runtime, guests.module(handle=SPIN), Limits(fuel=10**9, timeout_ms=5_000))
    with pytest.raises(PluginFault) as raised:
        plugin.call_raw(encode_input("go", {}, {}), None, timeout_ms=50)
    assert raised.value.kind == FaultKind.TIMEOUT
    assert raised.value.stats is not None and raised.value.stats.fuel_consumed < 10**9
    # A budget above the limit changes nothing: the fuel runs out as before.
    short = load(runtime, guests.module(handle=SPIN), Limits(fuel=1_000_000, timeout_ms=1_000))
    with pytest.raises(PluginFault) as raised:
        short.call_raw(encode_input("go", {}, {}), None, timeout_ms=60_000)
    assert raised.value.kind == FaultKind.FUEL_EXHAUSTED


LEAK_UNTIL_REFUSED = """
  (func (export "cms_handle") (param i32 i32) (result i64)
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (i64.const 0))"""

LEAK_THEN_WRITE_THROUGH_NULL = """
  (func (export "cms_handle") (param i32 i32) (result i64)
    (loop $more (br_if $more (i32.ne (call $alloc (i32.const 100000)) (i32.const 0))))
    (i64.const 0))"""

LEAK_THEN_CRASH = """
  (func (export "cms_handle") (param i32 i32) (result i64)
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)"""


@pytest.mark.parametrize("handle", [LEAK_UNTIL_REFUSED, LEAK_THEN_WRITE_THROUGH_NULL, LEAK_THEN_CRASH],
                         ids=["grow-until-refused", "alloc-until-null", "grow-then-trap"])
def test_unbounded_growth_stops_at_the_memory_cap(runtime: Runtime, handle: str) -> None:
    fault = fault_of(runtime, guests.module(handle=handle), Limits(memory_bytes=4 * MIB))
    assert fault.kind == FaultKind.MEMORY_LIMIT
    assert fault.stats is not None
    assert 3 * MIB < fault.stats.peak_memory_bytes <= 4 * MIB


def test_cms_alloc_returning_zero_is_a_memory_limit(runtime: Runtime) -> None:
    alloc = '(func $alloc (export "cms_alloc") (param i32) (result i32) (i32.const 0))'
    fault = fault_of(runtime, guests.module(alloc=alloc))
    assert fault.kind == FaultKind.MEMORY_LIMIT
    assert "cms_alloc returned 0" in fault.message


def test_a_module_that_starts_above_its_cap_is_refused_at_load(runtime: Runtime) -> None:
    wasm = guests.module(memory='(memory (export "memory") 80)')
    with pytest.raises(PluginFault) as raised:
        load(runtime, wasm, Limits(memory_bytes=4 * MIB))
    assert raised.value.kind == FaultKind.MEMORY_LIMIT


@pytest.mark.parametrize("packed, needle", [
    (f"(i64.const {pack(0xFFFF0000, 10)})", "outside linear memory"),
    (f"(i64.const {pack(16, 0x7FFFFFFF)})", "exceeds"),
    (f"(i64.const {pack(8 * 65536 - 50, 100)})", "outside linear memory"),
    (f"(i64.const {pack(16, 300 * 1024)})", "exceeds the 262144-byte limit"),
    ("(i64.const -1)", "exceeds"),
], ids=["pointer-out-of-bounds", "huge-length", "runs-off-the-end", "too-large", "all-ones"])
def test_output_outside_memory_or_too_large(runtime: Runtime, packed: str, needle: str) -> None:
    wasm = guests.returning(packed, memory='(memory (export "memory") 8)')
    fault = fault_of(runtime, wasm)
    assert fault.kind == FaultKind.INVALID_OUTPUT
    assert needle in fault.message


@pytest.mark.parametrize("output, needle", [
    (b'\xff\xfe{"ok":true}', "not UTF-8"),
    (b"hello there", "not JSON"),
    (b'[1, 2]', "JSON object"),
    (b'{"ok":"yes"}', '"ok": true or false'),
    (b'{"ok":false,"error":"nope"}', '"error"'),
    (b'{"ok":false}', '"error"'),
], ids=["not-utf8", "not-json", "not-object", "ok-not-bool", "error-not-object", "error-missing"])
def test_output_that_is_not_an_envelope(runtime: Runtime, output: bytes, needle: str) -> None:
    fault = fault_of(runtime, guests.constant(output))
    assert fault.kind == FaultKind.INVALID_OUTPUT
    assert needle in fault.message


def test_cms_handle_returning_zero_is_invalid_output(runtime: Runtime) -> None:
    fault = fault_of(runtime, guests.returning("(i64.const 0)"))
    assert fault.kind == FaultKind.INVALID_OUTPUT
    assert "cms_handle returned 0" in fault.message


@pytest.mark.parametrize("handle, needle", [
    ("""(func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))
        (func (export "cms_handle") (param i32 i32) (result i64)
          (i64.extend_i32_u (call $deep (i32.const 0))))""", "stack_overflow"),
    ("""(func (export "cms_handle") (param i32 i32) (result i64) unreachable)""", "unreachable"),
    ("""(func (export "cms_handle") (param i32 i32) (result i64)
          (i64.extend_i32_u (i32.div_u (i32.const 1) (local.get 1))))""", "division"),
    ("""(func (export "cms_handle") (param i32 i32) (result i64)
          (i64.extend_i32_u (i32.load (i32.const 0x7FFFFFF0))))""", "memory_out_of_bounds"),
], ids=["deep-recursion", "unreachable", "division-by-zero", "load-out-of-bounds"])
def test_guest_crashes_are_traps(runtime: Runtime, handle: str, needle: str) -> None:
    wasm = guests.module(handle=handle)
    plugin = load(runtime, wasm)
    with pytest.raises(PluginFault) as raised:
        plugin.call("go", {}) if needle != "division" else plugin.call_raw(b"")
    assert raised.value.kind == FaultKind.TRAP
    assert needle in raised.value.message.lower().replace(" ", "_") or needle in raised.value.message


def test_a_trap_in_the_start_function_is_a_trap_of_the_call(runtime: Runtime) -> None:
    extra = '(func $boom unreachable) (start $boom)'
    plugin = load(runtime, guests.module(extra=extra, abi_version=None))
    with pytest.raises(PluginFault) as raised:
        plugin.call("go")
    assert raised.value.kind in {FaultKind.TRAP, FaultKind.ABI_VIOLATION}


def test_faults_are_logged_with_their_kind(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="cms.runtime"):
        fault_of(runtime, guests.returning("unreachable"))
    [record] = [r for r in caplog.records if r.name == "cms.runtime.runtime"]
    assert "kind=trap plugin=guest version=0.1.0" in record.getMessage()
