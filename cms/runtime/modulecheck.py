"""Load-time checks of a compiled module against ABI v1: exports, signatures and imports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import wasmtime

from plugin_sdk import abi
from plugin_sdk.abi import FaultKind

from cms.runtime import growwatch
from cms.runtime.results import PluginFault


@dataclass(frozen=True)
class ModuleShape:
    """Where the ABI exports sit in the module's export list, and what it imports from `cms`."""

    memory_index: int
    alloc_index: int
    handle_index: int
    abi_version_index: int | None
    imports: frozenset[str]
    min_memory_bytes: int
    #: The grow-watch global's export index (cms.runtime.growwatch), when instrumented.
    refused_index: int | None = None


def _signature(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _violation(message: str) -> PluginFault:
    return PluginFault(FaultKind.ABI_VIOLATION, message)


def check_module(module: wasmtime.Module) -> ModuleShape:
    """The module's shape; raises PluginFault(abi_violation) naming the first thing that is wrong."""
    imports: set[str] = set()
    for item in module.imports:
        where = f"{item.module}.{item.name}"
        if item.module != abi.HOST_MODULE:
            raise _violation(f"imports {where}: plugins may import only from module "
                             f"{abi.HOST_MODULE!r}")
        host = abi.HOST_IMPORTS.get(item.name or "")
        if host is None:
            known = ", ".join(sorted(abi.HOST_IMPORTS))
            raise _violation(f"imports unknown host function {where} (the host offers {known})")
        if not isinstance(item.type, wasmtime.FuncType):
            raise _violation(f"imports {where} as a non-function")
        got = _signature(item.type)
        if got != (host.params, host.results):
            raise _violation(f"imports {where} with signature {_show(got)}; expected "
                             f"{_show((host.params, host.results))}")
        imports.add(host.name)

    exports = {item.name: (index, item.type) for index, item in enumerate(module.exports)}
    memory = exports.get(abi.EXPORT_MEMORY)
    if memory is None or not isinstance(memory[1], wasmtime.MemoryType):
        raise _violation(f"must export a memory named {abi.EXPORT_MEMORY!r}")
    memory_type: wasmtime.MemoryType = memory[1]
    if memory_type.is_64 or memory_type.is_shared:
        raise _violation("the exported memory must be a 32-bit, unshared memory")
    indexes: dict[str, int | None] = {}
    for name, expected in {**abi.REQUIRED_FUNCTIONS, **abi.OPTIONAL_FUNCTIONS}.items():
        found = exports.get(name)
        if found is None:
            if name in abi.REQUIRED_FUNCTIONS:
                raise _violation(f"missing export {name}{_show(expected)}")
            indexes[name] = None
            continue
        if not isinstance(found[1], wasmtime.FuncType):
            raise _violation(f"export {name} must be a function")
        got = _signature(found[1])
        if got != expected:
            raise _violation(f"export {name} has signature {_show(got)}; expected {_show(expected)}")
        indexes[name] = found[0]
    alloc, handle = indexes[abi.EXPORT_ALLOC], indexes[abi.EXPORT_HANDLE]
    assert alloc is not None and handle is not None
    return ModuleShape(
        memory_index=memory[0], alloc_index=alloc, handle_index=handle,
        abi_version_index=indexes[abi.EXPORT_ABI_VERSION], imports=frozenset(imports),
        min_memory_bytes=memory_type.limits.min * abi.WASM_PAGE_BYTES,
        refused_index=_global_export(exports, growwatch.REFUSED_EXPORT),
    )


def _global_export(exports: Mapping[str, tuple[int, object]], name: str) -> int | None:
    found = exports.get(name)
    return found[0] if found is not None and isinstance(found[1], wasmtime.GlobalType) else None


def _show(signature: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    params, results = signature
    return f"({', '.join(params)}) -> ({', '.join(results)})"
