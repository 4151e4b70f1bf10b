"""Load-time checks: a module that does not fit ABI v1 is refused as abi_violation, naming why."""

from __future__ import annotations

import pytest
import wasmtime

from cms.runtime import PluginFault, Runtime
from plugin_sdk.abi import FaultKind
from tests.runtime import guests
from tests.runtime.conftest import load


def violation(runtime: Runtime, wasm: bytes) -> str:
    with pytest.raises(PluginFault) as raised:
        load(runtime, wasm)
    assert raised.value.kind == FaultKind.ABI_VIOLATION
    return raised.value.message


@pytest.mark.parametrize("imports, needle", [
    ('(import "env" "system" (func (param i32) (result i32)))', "imports env.system"),
    ('(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
     "wasi_snapshot_preview1.fd_write"),
    ('(import "wasi_snapshot_preview1" "path_open" '
     '(func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))', "only from module 'cms'"),
    ('(import "cms" "spawn" (func))', "unknown host function cms.spawn"),
    ('(import "cms" "log" (func (param i32)))', "expected (i32, i32, i32) -> ()"),
    ('(import "cms" "log" (global i32))', "non-function"),
], ids=["env-system", "wasi-fd-write", "wasi-path-open", "unknown-cms-function", "wrong-import-type",
        "import-global"])
def test_forbidden_imports(runtime: Runtime, imports: str, needle: str) -> None:
    assert needle in violation(runtime, guests.module(imports=imports))


def test_missing_handle(runtime: Runtime) -> None:
    message = violation(runtime, guests.module(handle=""))
    assert "missing export cms_handle(i32, i32) -> (i64)" in message


def test_missing_alloc(runtime: Runtime) -> None:
    handle = '(func (export "cms_handle") (param i32 i32) (result i64) (i64.const 0))'
    assert "missing export cms_alloc" in violation(runtime, guests.module(alloc="", handle=handle))


def test_missing_memory(runtime: Runtime) -> None:
    wasm = guests.module(memory="(memory 1)")
    assert "must export a memory named 'memory'" in violation(runtime, wasm)


def test_wrong_signature(runtime: Runtime) -> None:
    handle = '(func (export "cms_handle") (param i32 i32) (result i32) (i32.const 0))'
    message = violation(runtime, guests.module(handle=handle))
    assert "export cms_handle has signature (i32, i32) -> (i32); expected (i32, i32) -> (i64)" in message


def test_memory_export_that_is_a_function(runtime: Runtime) -> None:
    extra = '(func (export "memory"))'
    assert "memory" in violation(runtime, guests.module(memory="(memory 1)", extra=extra))


@pytest.mark.parametrize("version", [0, 2])
def test_wrong_abi_version(runtime: Runtime, version: int) -> None:
    message = violation(runtime, guests.module(abi_version=version))
    assert f"returned {version}; this host speaks ABI 1" in message


def test_not_a_module_at_all(runtime: Runtime) -> None:
    with pytest.raises(PluginFault) as raised:
        runtime.compile(b"\x00asm\x01\x00\x00\x00garbage")
    assert raised.value.kind == FaultKind.ABI_VIOLATION
    assert "not a valid module for this host" in raised.value.message


def test_abi_version_export_is_optional(runtime: Runtime) -> None:
    plugin = load(runtime, guests.module(abi_version=None))
    assert plugin.call("x").ok


def test_tables_are_bounded(runtime: Runtime) -> None:
    message = violation(runtime, guests.module(extra="(table 20000 funcref)"))
    assert "minimum element size of 20000 which exceeds the limit of 10000" in message


def test_wat_helper_produces_valid_modules() -> None:
    wasmtime.Module.validate(wasmtime.Engine(), guests.module())
