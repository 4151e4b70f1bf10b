"""One guest call in a fresh Store and instance, through one of two equivalent paths.

`FastInvoker` drives wasmtime's C API directly through wasmtime-py's ctypes bindings (pinned to
WASMTIME_VERSION): an unchecked call with raw values, export lookup by index, raw memmove into
linear memory. It avoids the public wrappers' per-call type rebuilding, which is most of the cost
of a short call. `PublicInvoker` does the same through wasmtime-py's public API; it is the
fallback for other wasmtime versions, and the tests run every guest through both and compare.

Both return a `RawOutcome` (output bytes or a fault kind and message, plus fuel and memory) and
never raise for anything a guest does.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any, Protocol, cast

import wasmtime
from wasmtime import _bindings as B
from wasmtime import _func as wasmtime_func
from wasmtime._ffi import dll as wasmtime_dll

from plugin_sdk import abi
from plugin_sdk.abi import FaultKind

from cms.runtime import growwatch
from cms.runtime.limits import Limits
from cms.runtime.modulecheck import ModuleShape
from cms.runtime.results import HostFault


@dataclass
class RawOutcome:
    """What one guest call produced: `output` bytes, or a fault `kind` and `message`."""

    output: bytes | None
    kind: FaultKind | None
    message: str
    fuel_left: int
    memory_bytes: int
    #: The size a refused `memory.grow` asked for (bytes) and a refused `table.grow` (elements)
    #: during the call, 0 when none was refused (cms.runtime.growwatch).
    refused_memory_bytes: int = 0
    refused_table_elements: int = 0


class Invoker(Protocol):
    def invoke(self, data: bytes, limits: Limits, deadline_ticks: int) -> RawOutcome: ...


def _note_refusal(outcome: RawOutcome, refused: int) -> None:
    """Copy the grow-watch global into `outcome`: pages asked for by a refused memory.grow, or
    minus the elements asked for by a refused table.grow (cms.runtime.growwatch)."""
    if refused > 0:
        outcome.refused_memory_bytes = refused * abi.WASM_PAGE_BYTES
    elif refused < 0:
        outcome.refused_table_elements = -refused


def _near_cap(memory_bytes: int, cap: int) -> bool:
    """Whether a failure at this memory size is best explained by the memory cap.

    wasmtime's C API refuses a `memory.grow` past the cap quietly (it returns -1) and offers no
    hook to learn that it happened. The grow watch (cms.runtime.growwatch) records refusals in
    the modules it rewrites; for the rest, a trap or failed result while linear memory is within
    a quarter of the cap (at least one page) is counted as `memory_limit`.
    """
    return memory_bytes > cap - max(abi.WASM_PAGE_BYTES, cap // 4)


def classify_trap(code: wasmtime.TrapCode | None, message: str, memory_bytes: int,
                  cap: int) -> tuple[FaultKind, str]:
    """The fault kind of a trap: fuel, deadline, or a guest crash (memory-limit when at the cap)."""
    if code == wasmtime.TrapCode.OUT_OF_FUEL:
        return FaultKind.FUEL_EXHAUSTED, "the plugin used all of its fuel"
    if code == wasmtime.TrapCode.INTERRUPT:
        return FaultKind.TIMEOUT, "the plugin ran past its wall-clock deadline"
    first = trap_text(message)
    if _near_cap(memory_bytes, cap):
        return FaultKind.MEMORY_LIMIT, f"the plugin trapped at its memory cap ({first})"
    name = code.name.lower() if code is not None else "trap"
    return FaultKind.TRAP, f"{name}: {first}"


def trap_text(message: str) -> str:
    """The informative line of a wasmtime trap message (the cause, not the backtrace header)."""
    text = message.strip()
    if "Caused by:" in text:
        text = text.split("Caused by:", 1)[1].strip()
    line = text.splitlines()[0].strip() if text else "trap"
    return line.removeprefix("wasm trap: ")


def instantiation_fault(message: str) -> tuple[FaultKind, str]:
    """An instantiation failure: the host's pool being full is the host's fault, not the plugin's."""
    flat = " ".join(message.split())
    if "maximum concurrent" in flat or "pooling" in flat:
        return FaultKind.HOST_ERROR, f"no free sandbox slot in this process: {flat}"
    return FaultKind.ABI_VIOLATION, f"instantiation failed: {flat}"


def check_pointer(ptr: int, length: int, memory_bytes: int, limit: int) -> str | None:
    """Why an output at ptr/length is unacceptable, or None."""
    if length > limit:
        return f"output length {length} exceeds the {limit}-byte limit"
    if ptr + length > memory_bytes:
        return f"output {ptr}+{length} lies outside linear memory ({memory_bytes} bytes)"
    return None


def _fault_for_zero(what: str, memory_bytes: int, cap: int) -> tuple[FaultKind, str]:
    if what == abi.EXPORT_ALLOC or _near_cap(memory_bytes, cap):
        return FaultKind.MEMORY_LIMIT, f"{what} returned 0 (out of memory at {memory_bytes} bytes)"
    return FaultKind.INVALID_OUTPUT, f"{what} returned 0 (failure) instead of an output"


def take_host_exception() -> BaseException | None:
    """The exception a host function raised during the last call, cleared (fast path only)."""
    exc = wasmtime_func.LAST_EXCEPTION
    wasmtime_func.LAST_EXCEPTION = None
    return exc


def fault_of_host_exception(exc: BaseException) -> tuple[FaultKind, str]:
    if isinstance(exc, HostFault):
        return exc.kind, exc.message
    return FaultKind.HOST_ERROR, f"host function failed: {type(exc).__name__}: {exc}"


# ---- fast path: the C API through ctypes -------------------------------------------------------

def _raw(name: str, restype: Any, argtypes: list[Any]) -> Any:
    """A private ctypes prototype for a C API function (wasmtime-py's own stay untouched)."""
    func = wasmtime_dll[name]
    func.restype = restype
    func.argtypes = argtypes
    return func


_P = ctypes.POINTER
_store_new = _raw("wasmtime_store_new", _P(B.wasmtime_store_t),
                  [_P(B.wasm_engine_t), ctypes.c_void_p, ctypes.c_void_p])
_store_delete = _raw("wasmtime_store_delete", None, [_P(B.wasmtime_store_t)])
_store_context = _raw("wasmtime_store_context", _P(B.wasmtime_context_t), [_P(B.wasmtime_store_t)])
_store_limiter = _raw("wasmtime_store_limiter", None, [_P(B.wasmtime_store_t)] + [ctypes.c_int64] * 5)
_set_fuel = _raw("wasmtime_context_set_fuel", _P(B.wasmtime_error_t),
                 [_P(B.wasmtime_context_t), ctypes.c_uint64])
_get_fuel = _raw("wasmtime_context_get_fuel", _P(B.wasmtime_error_t),
                 [_P(B.wasmtime_context_t), _P(ctypes.c_uint64)])
_set_deadline = _raw("wasmtime_context_set_epoch_deadline", None,
                     [_P(B.wasmtime_context_t), ctypes.c_uint64])
_pre_instantiate = _raw("wasmtime_instance_pre_instantiate", _P(B.wasmtime_error_t),
                        [_P(B.wasmtime_instance_pre_t), _P(B.wasmtime_context_t),
                         _P(B.wasmtime_instance_t), _P(_P(B.wasm_trap_t))])
_export_nth = _raw("wasmtime_instance_export_nth", ctypes.c_bool,
                   [_P(B.wasmtime_context_t), _P(B.wasmtime_instance_t), ctypes.c_size_t,
                    _P(_P(ctypes.c_char)), _P(ctypes.c_size_t), _P(B.wasmtime_extern_t)])
_call_unchecked = _raw("wasmtime_func_call_unchecked", _P(B.wasmtime_error_t),
                       [_P(B.wasmtime_context_t), _P(B.wasmtime_func_t), _P(B.wasmtime_val_raw_t),
                        ctypes.c_size_t, _P(_P(B.wasm_trap_t))])
_memory_data = _raw("wasmtime_memory_data", ctypes.c_void_p,
                    [_P(B.wasmtime_context_t), _P(B.wasmtime_memory_t)])
_memory_size = _raw("wasmtime_memory_data_size", ctypes.c_size_t,
                    [_P(B.wasmtime_context_t), _P(B.wasmtime_memory_t)])
_global_get = _raw("wasmtime_global_get", None,
                   [_P(B.wasmtime_context_t), _P(B.wasmtime_global_t), _P(B.wasmtime_val_t)])

_EXTERN_GLOBAL = 1  # WASMTIME_EXTERN_GLOBAL in wasmtime.h
_EXTERN_MEMORY = 3  # WASMTIME_EXTERN_MEMORY in wasmtime.h
_byref = ctypes.byref
_memmove = ctypes.memmove
_string_at = ctypes.string_at


class _Failure(Exception):
    def __init__(self, kind: FaultKind, message: str) -> None:
        self.kind, self.message = kind, message


class FastInvoker:
    """Calls through the C API. Not thread-safe: the runtime keeps one per thread."""

    def __init__(self, engine: wasmtime.Engine, pre: wasmtime.InstancePre, shape: ModuleShape) -> None:
        self._engine_ptr = engine.ptr()
        self._engine = engine  # keep alive
        self._pre = pre
        self._pre_ptr = pre.ptr()
        self._shape = shape
        # Scratch values reused by every call (the invoker is per thread).
        self._instance = B.wasmtime_instance_t()
        self._trap = _P(B.wasm_trap_t)()
        self._name = _P(ctypes.c_char)()
        self._name_len = ctypes.c_size_t()
        self._memory = B.wasmtime_extern_t()
        self._alloc = B.wasmtime_extern_t()
        self._handle = B.wasmtime_extern_t()
        self._args = (B.wasmtime_val_raw_t * 2)()
        self._fuel = ctypes.c_uint64()
        self._global = B.wasmtime_extern_t()
        self._value = B.wasmtime_val_t()
        self._instantiated = False
        # Made once: the arguments of the grow-watch read after every call (ctypes.byref per
        # call costs about as much as the C calls themselves).
        self._global_refs = (_byref(self._instance), _byref(self._name), _byref(self._name_len),
                             _byref(self._global), _byref(self._global.of.global_),
                             _byref(self._value))
        # For host functions during a call (`read`, `write`): the running store's context, and
        # scratch of their own (the guest's handle call still owns `_args` and `_trap`).
        self._ctx: object | None = None
        self._host_args = (B.wasmtime_val_raw_t * 1)()
        self._host_trap = _P(B.wasm_trap_t)()

    def invoke(self, data: bytes, limits: Limits, deadline_ticks: int) -> RawOutcome:
        store = _store_new(self._engine_ptr, None, None)
        if not store:
            return RawOutcome(None, FaultKind.HOST_ERROR, "could not create a store", 0, 0)
        memory_bytes = 0
        fuel_left = limits.fuel
        setattr(self._memory, "kind", 255)  # no memory export seen yet in this call
        self._instantiated = False
        outer_ctx = self._ctx  # a call made from inside a host op of another call
        try:
            _store_limiter(store, limits.memory_bytes, limits.table_elements, 1, 1, 1)
            ctx = _store_context(store)
            error = _set_fuel(ctx, limits.fuel)
            if error:
                raise _Failure(FaultKind.HOST_ERROR, _error_message(error))
            _set_deadline(ctx, deadline_ticks)
            self._ctx = ctx
            try:
                memory_bytes, output = self._run(ctx, data, limits)
                outcome = RawOutcome(output, None, "", self._fuel_left(ctx), memory_bytes)
            except _Failure as failure:
                memory_bytes = self._memory_bytes(ctx)
                fuel_left = self._fuel_left(ctx)
                outcome = RawOutcome(None, failure.kind, failure.message, fuel_left, memory_bytes)
            if self._instantiated and self._shape.refused_index is not None:
                _note_refusal(outcome, self._global_value(ctx, self._shape.refused_index))
            return outcome
        except _Failure as failure:
            return RawOutcome(None, failure.kind, failure.message, fuel_left, memory_bytes)
        finally:
            self._ctx = outer_ctx
            _store_delete(store)

    # GuestMemory (cms.runtime.host): what `cms.call` and `cms.log` need of the running
    # instance, without the public API's export lookup and typed call (most of a host call).
    def read(self, ptr: int, length: int, what: str, keep: int | None = None) -> bytes:
        ctx = self._ctx
        if ctx is None or cast(int, self._memory.kind) != _EXTERN_MEMORY:
            raise HostFault(FaultKind.HOST_ERROR, f"{what} called outside a running instance")
        memory = _byref(self._memory.of.memory)
        ptr &= 0xFFFFFFFF
        length &= 0xFFFFFFFF
        if ptr + length > _memory_size(ctx, memory):
            raise HostFault(FaultKind.INVALID_OUTPUT, f"{what} pointer/length out of bounds")
        return _string_at(_memory_data(ctx, memory) + ptr, length if keep is None else min(length, keep))

    def write(self, data: bytes) -> int:
        ctx = self._ctx
        if ctx is None or cast(int, self._memory.kind) != _EXTERN_MEMORY:
            raise HostFault(FaultKind.HOST_ERROR, "a host answer outside a running instance")
        size = len(data)
        args, trap = self._host_args, self._host_trap
        args[0].i32 = size
        error = _call_unchecked(ctx, _byref(self._alloc.of.func), args, 1, _byref(trap))
        if trap:
            trap_obj = wasmtime.Trap._from_ptr(trap)
            self._host_trap = _P(B.wasm_trap_t)()  # the Trap object owns the old pointer
            raise trap_obj
        if error:
            raise HostFault(FaultKind.HOST_ERROR, f"{abi.EXPORT_ALLOC}: {_error_message(error)}")
        ptr = args[0].i32 & 0xFFFFFFFF
        if ptr == 0:
            raise HostFault(FaultKind.MEMORY_LIMIT,
                            f"{abi.EXPORT_ALLOC}({size}) returned 0 for a host answer")
        memory = _byref(self._memory.of.memory)
        if ptr + size > _memory_size(ctx, memory):
            raise HostFault(FaultKind.INVALID_OUTPUT,
                            f"{abi.EXPORT_ALLOC} returned an out-of-bounds pointer")
        _memmove(_memory_data(ctx, memory) + ptr, data, size)
        return abi.pack(ptr, size)

    def _run(self, ctx: object, data: bytes, limits: Limits) -> tuple[int, bytes]:
        shape, trap, instance = self._shape, self._trap, self._instance
        error = _pre_instantiate(self._pre_ptr, ctx, _byref(instance), _byref(trap))
        if error or trap:
            self._raise_call_failure(ctx, error, "instantiate", limits)
        self._instantiated = True
        nothing = (_byref(self._name), _byref(self._name_len))
        _export_nth(ctx, _byref(instance), shape.memory_index, *nothing, _byref(self._memory))
        _export_nth(ctx, _byref(instance), shape.alloc_index, *nothing, _byref(self._alloc))
        _export_nth(ctx, _byref(instance), shape.handle_index, *nothing, _byref(self._handle))
        memory = _byref(self._memory.of.memory)
        args = self._args
        size = len(data)

        args[0].i32 = size
        error = _call_unchecked(ctx, _byref(self._alloc.of.func), args, 2, _byref(trap))
        if error or trap:
            self._raise_call_failure(ctx, error, abi.EXPORT_ALLOC, limits)
        ptr = args[0].i32 & 0xFFFFFFFF
        memory_bytes = _memory_size(ctx, memory)
        if ptr == 0:
            raise _Failure(*_fault_for_zero(abi.EXPORT_ALLOC, memory_bytes, limits.memory_bytes))
        if ptr + size > memory_bytes:
            raise _Failure(FaultKind.INVALID_OUTPUT,
                           f"{abi.EXPORT_ALLOC} returned {ptr}, outside linear memory for {size} bytes")
        _memmove(_memory_data(ctx, memory) + ptr, data, size)

        args[0].i32 = ptr
        args[1].i32 = size
        error = _call_unchecked(ctx, _byref(self._handle.of.func), args, 2, _byref(trap))
        if error or trap:
            self._raise_call_failure(ctx, error, abi.EXPORT_HANDLE, limits)
        out_ptr, out_len = abi.unpack(args[0].i64)
        memory_bytes = _memory_size(ctx, memory)
        if out_ptr == 0 and out_len == 0:
            raise _Failure(*_fault_for_zero(abi.EXPORT_HANDLE, memory_bytes, limits.memory_bytes))
        problem = check_pointer(out_ptr, out_len, memory_bytes, limits.output_bytes)
        if problem:
            raise _Failure(FaultKind.INVALID_OUTPUT, problem)
        return memory_bytes, _string_at(_memory_data(ctx, memory) + out_ptr, out_len)

    def _raise_call_failure(self, ctx: object, error: object, what: str, limits: Limits) -> None:
        host_exc = take_host_exception()
        trap = self._trap
        message = ""
        code = None
        if trap:
            trap_obj = wasmtime.Trap._from_ptr(trap)
            self._trap = _P(B.wasm_trap_t)()  # the Trap object owns (and frees) the old pointer
            code, message = trap_obj.trap_code, trap_obj.message
        if error:
            message = _error_message(error)
        if isinstance(host_exc, wasmtime.Trap):  # the guest trapped inside a host function's call
            code, message, host_exc = host_exc.trap_code, host_exc.message, None
        if host_exc is not None:
            raise _Failure(*fault_of_host_exception(host_exc))
        if what == "instantiate" and code is None:
            raise _Failure(*instantiation_fault(message))
        raise _Failure(*classify_trap(code, message, self._memory_bytes(ctx), limits.memory_bytes))

    def _global_value(self, ctx: object, index: int) -> int:
        """The i64 value of the global exported at `index` by the running instance."""
        instance, name, name_len, extern, global_, value = self._global_refs
        if not _export_nth(ctx, instance, index, name, name_len, extern):
            return 0
        if cast(int, self._global.kind) != _EXTERN_GLOBAL:
            return 0
        _global_get(ctx, global_, value)
        return int(self._value.of.i64)

    def _memory_bytes(self, ctx: object) -> int:
        if cast(int, self._memory.kind) != _EXTERN_MEMORY:
            return 0
        return int(_memory_size(ctx, _byref(self._memory.of.memory)))

    def _fuel_left(self, ctx: object) -> int:
        error = _get_fuel(ctx, _byref(self._fuel))
        if error:
            wasmtime.WasmtimeError._from_ptr(error)
            return 0
        return int(self._fuel.value)


def _error_message(error: Any) -> str:
    return str(wasmtime.WasmtimeError._from_ptr(error))


# ---- public API path ---------------------------------------------------------------------------

class PublicInvoker:
    """Calls through wasmtime-py's public API: slower, version-independent, same results."""

    def __init__(self, engine: wasmtime.Engine, pre: wasmtime.InstancePre, shape: ModuleShape) -> None:
        self._engine = engine
        self._pre = pre
        self._shape = shape

    def invoke(self, data: bytes, limits: Limits, deadline_ticks: int) -> RawOutcome:
        store = wasmtime.Store(self._engine)
        store.set_limits(memory_size=limits.memory_bytes, table_elements=limits.table_elements,
                         instances=1, tables=1, memories=1)
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(deadline_ticks)
        instances: list[wasmtime.Instance] = []
        outcome = self._call(store, data, limits, instances)
        if instances and self._shape.refused_index is not None:
            _note_refusal(outcome, _global_of(store, instances[0].exports(store),
                                              growwatch.REFUSED_EXPORT))
        return outcome

    def _call(self, store: wasmtime.Store, data: bytes, limits: Limits,
              instances: list[wasmtime.Instance]) -> RawOutcome:
        memory: wasmtime.Memory | None = None
        stage = "instantiate"
        try:
            instance = self._pre.instantiate(store)
            instances.append(instance)
            exports = instance.exports(store)
            memory_export = exports[abi.EXPORT_MEMORY]
            assert isinstance(memory_export, wasmtime.Memory)
            memory = memory_export
            alloc, handle = exports[abi.EXPORT_ALLOC], exports[abi.EXPORT_HANDLE]
            assert isinstance(alloc, wasmtime.Func) and isinstance(handle, wasmtime.Func)
            stage = abi.EXPORT_ALLOC
            ptr = alloc(store, len(data))
            assert isinstance(ptr, int)
            ptr &= 0xFFFFFFFF
            size = memory.data_len(store)
            if ptr == 0:
                raise _Failure(*_fault_for_zero(abi.EXPORT_ALLOC, size, limits.memory_bytes))
            if ptr + len(data) > size:
                raise _Failure(FaultKind.INVALID_OUTPUT, f"{abi.EXPORT_ALLOC} returned {ptr}, "
                               f"outside linear memory for {len(data)} bytes")
            memory.write(store, data, ptr)
            stage = abi.EXPORT_HANDLE
            packed = handle(store, ptr, len(data))
            assert isinstance(packed, int)
            out_ptr, out_len = abi.unpack(packed)
            size = memory.data_len(store)
            if out_ptr == 0 and out_len == 0:
                raise _Failure(*_fault_for_zero(abi.EXPORT_HANDLE, size, limits.memory_bytes))
            problem = check_pointer(out_ptr, out_len, size, limits.output_bytes)
            if problem:
                raise _Failure(FaultKind.INVALID_OUTPUT, problem)
            output = bytes(memory.read(store, out_ptr, out_ptr + out_len))
            return RawOutcome(output, None, "", store.get_fuel(), size)
        except _Failure as failure:
            return self._outcome(store, memory, failure.kind, failure.message)
        except (HostFault, Exception) as exc:
            return self._outcome(store, memory, *self._classify(exc, store, memory, stage, limits))

    def _classify(self, exc: BaseException, store: wasmtime.Store, memory: wasmtime.Memory | None,
                  stage: str, limits: Limits) -> tuple[FaultKind, str]:
        if isinstance(exc, wasmtime.Trap):
            if stage == "instantiate" and exc.trap_code is None:
                return instantiation_fault(exc.message)
            return classify_trap(exc.trap_code, exc.message, _size(store, memory), limits.memory_bytes)
        if isinstance(exc, wasmtime.WasmtimeError):
            if stage == "instantiate":
                return instantiation_fault(str(exc))
            return classify_trap(None, str(exc), _size(store, memory), limits.memory_bytes)
        return fault_of_host_exception(exc)

    @staticmethod
    def _outcome(store: wasmtime.Store, memory: wasmtime.Memory | None, kind: FaultKind,
                 message: str) -> RawOutcome:
        return RawOutcome(None, kind, message, store.get_fuel(), _size(store, memory))


def _global_of(store: wasmtime.Store, exports: Any, name: str) -> int:
    found = exports.get(name)
    if not isinstance(found, wasmtime.Global):
        return 0
    value = found.value(store)
    return value if isinstance(value, int) else 0


def _size(store: wasmtime.Store, memory: wasmtime.Memory | None) -> int:
    return memory.data_len(store) if memory is not None else 0
