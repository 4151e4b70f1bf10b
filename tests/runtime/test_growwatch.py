"""The grow watch (cms.runtime.growwatch): a refused memory.grow or table.grow is seen by the host,
and whatever the call then fails with is reported as memory_limit naming both."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from cms.runtime import Limits, PluginFault, Runtime, growwatch
from plugin_sdk.abi import FaultKind
from tests.runtime import guests
from tests.runtime.conftest import load

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]

#: Every kind of immediate the decoder must step over, around the grows it rewrites.
BUSY = """(module
  (type $binop (func (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table $t 2 10 funcref)
  (global $g (mut i64) (i64.const 5))
  (elem (table $t) (i32.const 0) func $add $sub)
  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func (export "run") (param $pages i32) (result i64)
    (local $acc i64) (local $v v128) (local $f f64)
    (local.set $acc (i64.const -123456789012))
    (block $out
      (loop $l
        (br_table $out $l $out (i32.const 2))))
    (local.set $acc (i64.add (local.get $acc)
      (i64.extend_i32_s (call_indirect $t (type $binop) (i32.const 9) (i32.const 4) (i32.const 1)))))
    (local.set $acc (i64.add (local.get $acc)
      (i64.extend_i32_s (memory.grow (local.get $pages)))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (memory.size))))
    (memory.fill (i32.const 100) (i32.const 7) (i32.const 50))
    (memory.copy (i32.const 300) (i32.const 100) (i32.const 50))
    (i32.store offset=8 align=2 (i32.const 400) (i32.load8_u offset=10 (i32.const 300)))
    (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
                    (v128.const i32x4 1 2 3 4) (v128.load (i32.const 100))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32x4.extract_lane 3 (local.get $v)))))
    (local.set $f (f64.add (f64.const 1.5) (f64.promote_f32 (f32.const 2.25))))
    (local.set $acc (i64.add (local.get $acc) (i64.trunc_sat_f64_s (local.get $f))))
    (local.set $acc (i64.add (local.get $acc)
      (i64.extend_i32_s (table.grow $t (ref.func $add) (i32.const 3)))))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (table.size $t))))
    (local.set $acc (i64.add (local.get $acc)
      (i64.extend_i32_u (select (result i32) (i32.const 1) (i32.const 2) (i32.const 0)))))
    (if (result i64) (i32.eqz (ref.is_null (ref.null func)))
      (then (i64.const 0))
      (else (i64.add (local.get $acc) (global.get $g))))))"""


def _run(wasm: bytes, pages: int, memory_cap: int = 4 * MIB) -> tuple[int, dict[str, int]]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=memory_cap, table_elements=100)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, wasm), [])
    exports = instance.exports(store)
    run = exports["run"]
    assert isinstance(run, wasmtime.Func)
    value = run(store, pages)
    assert isinstance(value, int)
    refused = exports.get(growwatch.REFUSED_EXPORT)
    return value, ({"refused": refused.value(store)}  # type: ignore[union-attr]
                   if refused is not None else {})


@pytest.mark.parametrize("pages", [1, 200])
def test_an_instrumented_module_computes_what_the_original_does(pages: int) -> None:
    original = wasmtime.wat2wasm(BUSY)
    watched = growwatch.instrument(original)
    assert watched != original
    before, _ = _run(original, pages)
    after, refused = _run(watched, pages)
    assert after == before
    # 200 pages do not fit under 4 MiB: the grow to 1 + 200 pages was refused and recorded.
    assert refused == {"refused": 201 if pages == 200 else 0}


def test_a_refused_table_grow_is_recorded_in_elements() -> None:
    watched = growwatch.instrument(wasmtime.wat2wasm(BUSY.replace("(i32.const 3)))))",
                                                                  "(i32.const 500)))))")))
    _, refused = _run(watched, 1)
    assert refused == {"refused": -502}  # a table's refusal counts elements, negated


def test_modules_without_grows_or_not_understood_are_left_as_they_were() -> None:
    no_grow = wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "f")))')
    assert growwatch.instrument(no_grow) == no_grow
    assert growwatch.instrument(b"not wasm at all") == b"not wasm at all"
    table_only = wasmtime.wat2wasm('(module (table 1 funcref) (func (export "f") '
                                   '(drop (table.grow (ref.null func) (i32.const 1)))))')
    assert growwatch.instrument(table_only) == table_only  # no memory: nothing to add


def test_a_module_exporting_the_reserved_name_itself_is_refused(runtime: Runtime) -> None:
    """Its own global under that name would let it pass any fault off as memory_limit."""
    extra = '(global $fake (export "__cms_grow_refused") (mut i64) (i64.const 1))'
    wasm = guests.module(extra=extra)
    with pytest.raises(growwatch.ReservedName):
        growwatch.instrument(wasm)
    with pytest.raises(PluginFault) as raised:
        load(runtime, wasm)
    assert raised.value.kind == FaultKind.ABI_VIOLATION
    assert "exports '__cms_grow_refused', a name the host reserves" in raised.value.message


def test_every_bundled_plugin_is_watched() -> None:
    modules = sorted((ROOT / "wasm").rglob("*.wasm"))
    assert len(modules) >= 6
    for path in modules:
        wasm = path.read_bytes()
        module = wasmtime.Module(wasmtime.Engine(), growwatch.instrument(wasm))
        names = {e.name for e in module.exports}
        assert growwatch.REFUSED_EXPORT in names, path


# The rule, through the runtime (both backends) ----------------------------------------------------

GROW_UNCHECKED_THEN = """
  (func (export "cms_handle") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 128)))
    {then})"""


@pytest.mark.parametrize(("then", "symptom"), [
    ("(i64.const 16)", "then: output is not JSON"),
    ("unreachable", "then: unreachable: wasm `unreachable` instruction executed"),
    ("(i64.const 0)", "then: cms_handle returned 0 (failure) instead of an output"),
    ("(i64.const 0x7fff000000000010)", "then: output 2147418112+16 lies outside linear memory"),
], ids=["not-json", "trap", "zero", "out-of-bounds"])
def test_any_fault_after_a_refused_grow_is_memory_limit(runtime: Runtime, then: str,
                                                        symptom: str) -> None:
    wasm = guests.module(handle=GROW_UNCHECKED_THEN.format(then=then), data=b"\xff" * 16)
    plugin = load(runtime, wasm, Limits(memory_bytes=4 * MIB))
    with pytest.raises(PluginFault) as raised:
        plugin.call("go")
    fault = raised.value
    assert fault.kind == FaultKind.MEMORY_LIMIT
    assert fault.message.startswith("memory limit reached (a grow to 8.1 MiB was refused); ")
    assert symptom in fault.message
    assert fault.stats is not None and fault.stats.refused_memory_bytes == 129 * 64 * 1024
    # Memory stayed far from the cap: only the refusal explains the fault.
    assert fault.stats.peak_memory_bytes == 64 * 1024


def test_the_same_faults_without_a_refused_grow_keep_their_kind(runtime: Runtime) -> None:
    wasm = guests.module(handle=GROW_UNCHECKED_THEN.format(then="unreachable"))
    with pytest.raises(PluginFault) as raised:
        load(runtime, wasm, Limits(memory_bytes=16 * MIB)).call("go")
    assert raised.value.kind == FaultKind.TRAP
    assert raised.value.stats is not None and raised.value.stats.refused_memory_bytes == 0


def test_a_refused_grow_that_the_plugin_handles_is_no_fault(runtime: Runtime) -> None:
    handle = """
  (func (export "cms_handle") (param $p i32) (param $l i32) (result i64)
    (if (i32.ne (memory.grow (i32.const 128)) (i32.const -1)) (then unreachable))
    (i64.const {packed}))""".format(packed=(16 << 32) | 11)
    plugin = load(runtime, guests.module(handle=handle, data=b'{"ok":true}'),
                  Limits(memory_bytes=4 * MIB))
    result = plugin.call("go")
    assert result.ok and result.stats.refused_memory_bytes == 129 * 64 * 1024


def test_a_fault_that_is_already_memory_limit_keeps_its_message(runtime: Runtime) -> None:
    wasm = guests.module(handle="""
  (func (export "cms_handle") (param i32 i32) (result i64)
    (loop $more (br_if $more (i32.ne (call $alloc (i32.const 100000)) (i32.const 0))))
    (i64.const 0))""")
    with pytest.raises(PluginFault) as raised:
        load(runtime, wasm, Limits(memory_bytes=4 * MIB)).call("go")
    assert raised.value.kind == FaultKind.MEMORY_LIMIT
    assert raised.value.message.startswith("cms_handle returned 0 (out of memory")


def test_a_refused_table_grow_then_a_fault_is_memory_limit_naming_the_table(runtime: Runtime) -> None:
    handle = """
  (table $t 1 100 funcref)
  (func (export "cms_handle") (param i32 i32) (result i64)
    (drop (table.grow $t (ref.null func) (i32.const 1000)))
    unreachable)"""
    with pytest.raises(PluginFault) as raised:
        load(runtime, guests.module(handle=handle), Limits(table_elements=100)).call("go")
    assert raised.value.kind == FaultKind.MEMORY_LIMIT
    assert raised.value.message.startswith(
        "memory limit reached (a table grow to 1001 elements was refused); then: unreachable")
