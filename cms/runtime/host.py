"""Host functions offered to guests in module `cms`, gated by capability, counted and timed.

`cms.log` writes a line into the plugin log. `cms.call` carries every other capability as a JSON
request `{"op": "kv.get", "args": {...}}`; the host answers `{"ok": true, "result": ...}` or
`{"ok": false, "error": {...}}` through guest memory. Ops are registered in a `HostOps` table that
the runtime owns; later capabilities (kv, clients.read, mail.send, ...) are more ops.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import wasmtime

from plugin_sdk import abi
from plugin_sdk.abi import FaultKind

from cms.runtime import jsonlimit
from cms.runtime.results import HostFault

logger = logging.getLogger(__name__)

MAX_LOG_LINE_BYTES = 2048
#: Plugin log lines per plugin and process: a burst of LOG_BURST, then LOG_PER_SECOND; the rest
#: are dropped (and counted), so a chatty plugin cannot flood the server's logs.
LOG_BURST = 100
LOG_PER_SECOND = 20.0
MAX_REQUEST_BYTES = 64 * 1024
MAX_ANSWER_BYTES = 256 * 1024

#: Error-answer codes for the host's own trouble (the plugin is not at fault and may degrade).
UNAVAILABLE = "unavailable"
TIMED_OUT = "timeout"


class HostOpError(Exception):
    """Raised by an op handler for an expected failure the guest should see (not a fault)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class CallContext:
    """The state of one plugin call that host functions see. Lives for exactly one call."""

    plugin_id: str
    version: str
    grants: frozenset[str]
    max_host_calls: int
    deadline: float  # time.monotonic() value
    context: Mapping[str, Any] = field(default_factory=dict)
    host_calls: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)
    log_dropped: int = 0
    #: The running instance's memory, reached without the public API's export lookups (the
    #: fast invoker sets it); None: host functions go through the wasmtime `Caller`.
    guest: "GuestMemory | None" = None

    def count(self, what: str) -> None:
        """Count one host call; raise HostFault(capability_denied) past the per-call budget."""
        self.host_calls += 1
        if self.host_calls > self.max_host_calls:
            raise HostFault(FaultKind.CAPABILITY_DENIED,
                            f"more than {self.max_host_calls} host calls in one invocation "
                            f"(the last was {what})")

    def require(self, capability: str, what: str) -> None:
        if capability not in self.grants:
            raise HostFault(FaultKind.CAPABILITY_DENIED,
                            f"{what} needs capability {capability!r}, which is not granted")


class GuestMemory(Protocol):
    """The running instance's linear memory and allocator, as host functions need them."""

    def read(self, ptr: int, length: int, what: str, keep: int | None = None) -> bytes:
        """Guest bytes at ptr/length (bounds-checked in full; only the first `keep` copied);
        raises HostFault(invalid_output) out of bounds."""
        ...

    def write(self, data: bytes) -> int:
        """Copy `data` into memory from the guest's allocator; the packed (ptr, len). Raises
        HostFault (memory_limit on a 0 pointer) or the guest's Trap."""
        ...


Handler = Callable[[CallContext, dict[str, Any]], Any]


@dataclass(frozen=True)
class HostOp:
    """One operation behind `cms.call`. A blocking handler runs on a helper thread with a timeout."""

    name: str
    capability: str
    handler: Handler
    timeout_ms: int = 1_000
    blocking: bool = False


#: Told of every host op's outcome: (capability, "ok" | error code | "denied", the call).
Observer = Callable[[str, str, "CallContext"], None]


class HostOps:
    """The ops a runtime offers, by name, and who is told of their outcomes (metrics)."""

    def __init__(self, ops: list[HostOp] | None = None, observe: Observer | None = None) -> None:
        self.observe = observe
        self._ops: dict[str, HostOp] = {}
        for op in ops or []:
            self.add(op)

    def add(self, op: HostOp) -> None:
        if op.name in self._ops:
            raise ValueError(f"host op {op.name!r} is already registered")
        self._ops[op.name] = op

    def get(self, name: str) -> HostOp | None:
        return self._ops.get(name)

    def names(self) -> list[str]:
        return sorted(self._ops)


class _Executor:
    """A small per-process thread pool for blocking handlers (threads do not survive fork)."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cms-host")
                self._pid = os.getpid()
            return self._pool


class HostFunctions:
    """Defines `cms.log` and `cms.call` in a Linker; dispatches to the current thread's call."""

    def __init__(self, ops: HostOps) -> None:
        self.ops = ops
        self._local = threading.local()
        self._executor = _Executor()
        self._log_tokens: dict[str, tuple[float, float]] = {}
        self._log_lock = threading.Lock()

    def _log_allowed(self, plugin_id: str) -> bool:
        """Token bucket per plugin: True when this line may be written."""
        now = time.monotonic()
        with self._log_lock:
            tokens, last = self._log_tokens.get(plugin_id, (float(LOG_BURST), now))
            tokens = min(float(LOG_BURST), tokens + (now - last) * LOG_PER_SECOND)
            allowed = tokens >= 1.0
            self._log_tokens[plugin_id] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    # The runtime brackets every guest call with these two.
    def enter(self, call: CallContext) -> None:
        self._local.call = call

    def leave(self) -> None:
        self._local.call = None

    def current(self) -> CallContext:
        call: CallContext | None = getattr(self._local, "call", None)
        if call is None:
            raise HostFault(FaultKind.HOST_ERROR, "host function called outside a plugin call")
        return call

    def define(self, linker: wasmtime.Linker) -> None:
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        linker.define_func(abi.HOST_MODULE, "log", wasmtime.FuncType([i32, i32, i32], []),
                           self._log, access_caller=True)
        linker.define_func(abi.HOST_MODULE, "call", wasmtime.FuncType([i32, i32], [i64]),
                           self._call, access_caller=True)

    def _log(self, caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
        call = self.current()
        call.count("log")
        call.require("log", "cms.log")
        data = (call.guest.read(ptr, length, "cms.log", keep=MAX_LOG_LINE_BYTES)
                if call.guest is not None
                else _read(caller, ptr, length, "cms.log", keep=MAX_LOG_LINE_BYTES))
        name = abi.LOG_LEVELS[level] if 0 <= level < len(abi.LOG_LEVELS) else "info"
        line = data.decode("utf-8", errors="replace")
        call.log.append((name, line))
        if not self._log_allowed(call.plugin_id):
            call.log_dropped += 1
            return
        logging.getLogger(f"cms.plugins.{call.plugin_id}").log(
            logging.getLevelName(name.upper()), "%s@%s: %s", call.plugin_id, call.version, line)

    def _call(self, caller: wasmtime.Caller, ptr: int, length: int) -> int:
        call = self.current()
        call.count("call")
        if length > MAX_REQUEST_BYTES:
            raise HostFault(FaultKind.INVALID_OUTPUT,
                            f"cms.call request is {length} bytes; at most {MAX_REQUEST_BYTES}")
        guest = call.guest
        request = (guest.read(ptr, length, "cms.call") if guest is not None
                   else _read(caller, ptr, length, "cms.call"))
        answer = self._answer(call, request)
        data = json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(data) > MAX_ANSWER_BYTES:
            data = json.dumps({"ok": False, "error": {"code": "too_large", "message":
                              f"the answer would be {len(data)} bytes"}}).encode()
        return guest.write(data) if guest is not None else _write(caller, data)

    def _answer(self, call: CallContext, request: bytes) -> dict[str, Any]:
        try:
            message = jsonlimit.loads(request, max_bytes=len(request))
        except jsonlimit.JsonRefused as exc:
            return _error("bad_request", f"the request is refused: {exc}")
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            return _error("bad_request", 'the request must be {"op": str, "args": {...}}')
        args = message.get("args", {})
        if not isinstance(args, dict):
            return _error("bad_request", '"args" must be an object')
        if message["op"] == abi.ABORT_OP:
            raise _abort(args)
        op = self.ops.get(message["op"])
        if op is None:
            self._observe("unknown", "unknown_op", call)
            return _error("unknown_op", f"no host op {message['op']!r}")
        try:
            call.require(op.capability, f"op {op.name!r}")
        except HostFault:
            self._observe(op.capability, "denied", call)
            raise
        try:
            result = self._run(call, op, args)
        except HostOpError as exc:
            self._observe(op.capability, exc.code, call)
            return _error(exc.code, exc.message)
        self._observe(op.capability, "ok", call)
        return {"ok": True, "result": result}

    def _observe(self, capability: str, outcome: str, call: CallContext) -> None:
        observe = self.ops.observe
        if observe is not None:
            try:
                observe(capability, outcome, call)
            except Exception:  # metrics must never change a plugin call
                logger.exception("host-call observer failed")

    def _run(self, call: CallContext, op: HostOp, args: dict[str, Any]) -> Any:
        """The op's result. A failing or slow op is an error *answer* (`unavailable`, `timeout`):
        the host's own trouble is not the plugin's fault, and the plugin gets to degrade. Only
        running past the whole call's deadline ends the call (fault `timeout`)."""
        remaining_ms = max(0.0, (call.deadline - time.monotonic()) * 1000)
        timeout_ms = min(op.timeout_ms, remaining_ms)
        started = time.monotonic()
        try:
            if op.blocking:
                future = self._executor.get().submit(op.handler, call, args)
                try:
                    result = future.result(timeout=timeout_ms / 1000)
                except FutureTimeout:
                    future.cancel()
                    raise self._late(call, op, timeout_ms) from None
            else:
                result = op.handler(call, args)
        except (HostFault, HostOpError):
            raise
        except Exception as exc:  # a failing handler is answered; it never reaches the worker
            logger.warning("host op %s failed for %s@%s", op.name, call.plugin_id, call.version,
                           exc_info=True)
            raise HostOpError(UNAVAILABLE, f"host op {op.name!r} failed "
                              f"({type(exc).__name__}); try again later") from exc
        elapsed_ms = (time.monotonic() - started) * 1000
        if elapsed_ms > timeout_ms:
            raise self._late(call, op, elapsed_ms)
        return result

    @staticmethod
    def _late(call: CallContext, op: HostOp, elapsed_ms: float) -> Exception:
        if time.monotonic() >= call.deadline:
            return HostFault(FaultKind.TIMEOUT, f"the call's deadline passed in host op {op.name!r}")
        return HostOpError(TIMED_OUT, f"host op {op.name!r} took longer than its "
                           f"{op.timeout_ms} ms limit")


def _abort(args: dict[str, Any]) -> HostFault:
    """The guest gives up (`abi.ABORT_OP`): a clean fault of the kind it names."""
    kind = args.get("kind")
    message = str(args.get("message") or "no message")[:500]
    if kind not in abi.ABORT_KINDS:
        return HostFault(FaultKind.TRAP, f"plugin aborted (kind {kind!r} is not one of "
                         f"{', '.join(abi.ABORT_KINDS)}): {message}")
    return HostFault(FaultKind(kind), f"plugin aborted: {message}")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def _memory(caller: wasmtime.Caller) -> wasmtime.Memory:
    memory = caller.get(abi.EXPORT_MEMORY)
    if not isinstance(memory, wasmtime.Memory):
        raise HostFault(FaultKind.ABI_VIOLATION, "the guest has no exported memory")
    return memory


def _read(caller: wasmtime.Caller, ptr: int, length: int, what: str, keep: int | None = None) -> bytes:
    """Guest bytes at ptr/length (bounds-checked in full); only the first `keep` are copied."""
    memory = _memory(caller)
    ptr &= 0xFFFFFFFF
    length &= 0xFFFFFFFF
    if ptr + length > memory.data_len(caller):
        raise HostFault(FaultKind.INVALID_OUTPUT, f"{what} pointer/length out of bounds")
    end = ptr + (length if keep is None else min(length, keep))
    return bytes(memory.read(caller, ptr, end))


def _write(caller: wasmtime.Caller, data: bytes) -> int:
    alloc = caller.get(abi.EXPORT_ALLOC)
    if not isinstance(alloc, wasmtime.Func):
        raise HostFault(FaultKind.ABI_VIOLATION, f"the guest has no {abi.EXPORT_ALLOC} export")
    ptr = alloc(caller, len(data))
    if not isinstance(ptr, int) or ptr == 0:
        raise HostFault(FaultKind.MEMORY_LIMIT,
                        f"{abi.EXPORT_ALLOC}({len(data)}) returned 0 for a host answer")
    ptr &= 0xFFFFFFFF
    memory = _memory(caller)
    if ptr + len(data) > memory.data_len(caller):
        raise HostFault(FaultKind.INVALID_OUTPUT, f"{abi.EXPORT_ALLOC} returned an out-of-bounds pointer")
    memory.write(caller, data, ptr)
    return abi.pack(ptr, len(data))
