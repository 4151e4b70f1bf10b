"""The runtime facade: load a plugin once, then call it any number of times in fresh sandboxes."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import wasmtime

from plugin_sdk import abi
from plugin_sdk.abi import EnvelopeError, FaultKind

from cms.runtime import growwatch
from cms.runtime.artifacts import ArtifactStore
from cms.runtime.engine import WASMTIME_VERSION, EngineHost, EngineSettings, wasmtime_version
from cms.runtime.host import CallContext, HostFunctions, HostOps
from cms.runtime.limits import DEFAULT_CAPS, DEFAULT_LIMITS, Limits
from cms.runtime.modulecheck import ModuleShape, check_module
from cms.runtime.results import CallResult, CallStats, PluginFault, attributed, one_line
from cms.runtime.sandbox import FastInvoker, Invoker, PublicInvoker, RawOutcome

logger = logging.getLogger(__name__)

Backend = Literal["auto", "fast", "public"]


@dataclass(frozen=True)
class RuntimeConfig:
    """How the runtime runs plugins. `backend="auto"` takes the fast path on the pinned wasmtime."""

    artifact_dir: Path
    defaults: Limits = DEFAULT_LIMITS
    caps: Limits = DEFAULT_CAPS
    engine: EngineSettings = field(default_factory=EngineSettings)
    backend: Backend = "auto"
    #: Compile a missing or corrupt artifact when loading (CLI, tests); the server refuses instead.
    compile_missing: bool = False


class Runtime:
    """Loads plugins and owns the per-process Engine, ticker, artifacts and host functions."""

    def __init__(self, config: RuntimeConfig, ops: HostOps | None = None) -> None:
        config.defaults.within(config.caps)
        self.config = config
        self.engines = EngineHost(config.engine)
        self.artifacts = ArtifactStore(config.artifact_dir, config.engine.fingerprint())
        self.host = HostFunctions(ops or HostOps())
        self._linkers: dict[int, wasmtime.Linker] = {}
        self.backend: Literal["fast", "public"] = (
            ("fast" if wasmtime_version() == WASMTIME_VERSION else "public")
            if config.backend == "auto" else config.backend
        )

    def compile(self, wasm: bytes) -> Path:
        """Validate and compile `wasm` into its artifact (build/publish time). Returns its path.

        Raises PluginFault(abi_violation) when the bytes are not a module that fits ABI v1.
        """
        engine = self.engines.get()
        try:
            path = self.artifacts.compile(engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise PluginFault(FaultKind.ABI_VIOLATION, f"not a valid module for this host: "
                              f"{one_line(exc)}") from None
        except growwatch.ReservedName as exc:
            raise PluginFault(FaultKind.ABI_VIOLATION, str(exc)) from None
        check_module(wasmtime.Module.deserialize_file(engine, str(path)))
        return path

    def load(self, wasm: bytes, *, plugin_id: str, version: str, limits: Limits | None = None,
             grants: frozenset[str] = frozenset()) -> Plugin:
        """A callable plugin from its wasm bytes, checked against ABI v1 and `limits`.

        Raises PluginFault (abi_violation or memory_limit) for a module that can never run, and
        ArtifactError when its compiled artifact is missing or corrupt and may not be rebuilt.
        """
        limits = (limits or self.config.defaults).within(self.config.caps)
        plugin = Plugin(self, wasm, plugin_id, version, limits, grants)
        plugin.prepared()  # check now, and fail at load rather than on the first call
        return plugin

    def load_file(self, path: Path, **kwargs: Any) -> Plugin:
        return self.load(Path(path).read_bytes(), **kwargs)

    def close(self) -> None:
        """Stop this process's epoch ticker and drop its Engine; plugins loaded from this
        runtime stop working."""
        self.engines.close()
        self._linkers = {}

    def _linker(self, engine: wasmtime.Engine) -> wasmtime.Linker:
        key = id(engine)
        linker = self._linkers.get(key)
        if linker is None:
            linker = wasmtime.Linker(engine)
            self.host.define(linker)
            self._linkers = {key: linker}  # an older engine (before fork) is dropped
        return linker


@dataclass
class _Prepared:
    """A plugin's compiled state in one process (rebuilt after fork)."""

    pid: int
    engine: wasmtime.Engine
    module: wasmtime.Module
    pre: wasmtime.InstancePre
    shape: ModuleShape
    invokers: threading.local


class Plugin:
    """A loaded plugin. `call` runs one action in a fresh Store and instance; nothing survives it."""

    def __init__(self, runtime: Runtime, wasm: bytes, plugin_id: str, version: str,
                 limits: Limits, grants: frozenset[str]) -> None:
        self.runtime = runtime
        self.wasm = wasm
        self.plugin_id = plugin_id
        self.version = version
        self.limits = limits
        self.grants = frozenset(grants)
        self._prepared: _Prepared | None = None
        self._lock = threading.Lock()

    def prepared(self) -> _Prepared:
        """This process's compiled module and pre-linked instance (deserialized, never compiled)."""
        prepared = self._prepared
        if prepared is not None and prepared.pid == os.getpid():
            return prepared
        with self._lock:
            if self._prepared is None or self._prepared.pid != os.getpid():
                self._prepared = self._prepare()
            return self._prepared

    def _prepare(self) -> _Prepared:
        runtime = self.runtime
        engine = runtime.engines.get()
        try:
            module = runtime.artifacts.load(engine, self.wasm,
                                            compile_missing=runtime.config.compile_missing)
        except wasmtime.WasmtimeError as exc:
            raise PluginFault(FaultKind.ABI_VIOLATION, f"not a valid module for this host: "
                              f"{one_line(exc)}") from None
        except growwatch.ReservedName as exc:
            raise PluginFault(FaultKind.ABI_VIOLATION, str(exc)) from None
        shape = check_module(module)
        if shape.min_memory_bytes > self.limits.memory_bytes:
            raise PluginFault(FaultKind.MEMORY_LIMIT,
                              f"the module starts with {shape.min_memory_bytes} bytes of memory; "
                              f"its limit is {self.limits.memory_bytes}")
        try:
            pre = runtime._linker(engine).instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:  # e.g. a table larger than the sandbox allows
            raise PluginFault(FaultKind.ABI_VIOLATION, f"cannot be instantiated here: "
                              f"{one_line(exc)}") from None
        prepared = _Prepared(os.getpid(), engine, module, pre, shape, threading.local())
        self._check_abi_version(prepared)
        return prepared

    def _check_abi_version(self, prepared: _Prepared) -> None:
        if prepared.shape.abi_version_index is None:
            return
        store = wasmtime.Store(prepared.engine)
        store.set_limits(memory_size=self.limits.memory_bytes, instances=1, tables=1, memories=1)
        store.set_fuel(1_000_000)
        store.set_epoch_deadline(self._deadline_ticks())
        try:
            instance = prepared.pre.instantiate(store)
            version_func = instance.exports(store)[abi.EXPORT_ABI_VERSION]
            assert isinstance(version_func, wasmtime.Func)
            version = version_func(store)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise PluginFault(FaultKind.ABI_VIOLATION,
                              f"{abi.EXPORT_ABI_VERSION}() failed: {one_line(exc)}") from None
        if version != abi.ABI_VERSION:
            raise PluginFault(FaultKind.ABI_VIOLATION, f"{abi.EXPORT_ABI_VERSION}() returned "
                              f"{version}; this host speaks ABI {abi.ABI_VERSION}")

    def _invoker(self, prepared: _Prepared) -> Invoker:
        invoker: Invoker | None = getattr(prepared.invokers, "invoker", None)
        if invoker is None:
            cls = FastInvoker if self.runtime.backend == "fast" else PublicInvoker
            invoker = cls(prepared.engine, prepared.pre, prepared.shape)
            prepared.invokers.invoker = invoker
        return invoker

    def _deadline_ticks(self, budget_ms: int | None = None) -> int:
        """Epoch ticks for the whole limit (at least the limit: one tick more), or for a
        shorter budget (within the budget: one tick is kept back for the ticker's own lateness
        and the host's work around the call; the first tick may come at once)."""
        tick = self.runtime.config.engine.epoch_tick_ms
        if budget_ms is None or budget_ms >= self.limits.timeout_ms:
            return math.ceil(self.limits.timeout_ms / tick) + 1
        return max(1, (budget_ms - tick) // tick)

    def call(self, action: str, params: Mapping[str, Any] | None = None,
             context: Mapping[str, Any] | None = None) -> CallResult:
        """Run `action`; return the checked output envelope.

        Raises PluginFault for every fault of the plugin, and EnvelopeError (before any sandbox
        exists) when the caller's action, params or context cannot form a valid input.
        """
        return self.call_raw(abi.encode_input(action, params, context), context)

    def call_raw(self, data: bytes, context: Mapping[str, Any] | None = None,
                 timeout_ms: int | None = None) -> CallResult:
        """Run an already encoded input envelope; raises EnvelopeError when it is too large.

        `timeout_ms` shortens this call's wall-clock deadline (never beyond the plugin's own
        limit): a page gives an inline panel a short budget this way."""
        started = time.perf_counter()
        budget_ms = min(timeout_ms or self.limits.timeout_ms, self.limits.timeout_ms)
        if len(data) > self.limits.input_bytes:
            raise EnvelopeError(f"input is {len(data)} bytes; the limit is {self.limits.input_bytes}")
        prepared = self.prepared()
        invoker = self._invoker(prepared)
        host = self.runtime.host
        call: CallContext | None = None
        if prepared.shape.imports:
            call = CallContext(self.plugin_id, self.version, self.grants, self.limits.max_host_calls,
                               time.monotonic() + budget_ms / 1000, context or {},
                               guest=invoker if isinstance(invoker, FastInvoker) else None)
            host.enter(call)
        try:
            raw = invoker.invoke(data, self.limits, self._deadline_ticks(budget_ms))
        finally:
            if call is not None:
                host.leave()
        host_calls = call.host_calls if call is not None else 0
        stats = self._stats(started, raw, host_calls)
        if raw.kind is not None:
            # A page's short budget running out defers the panel; it is not the plugin's fault.
            budget_only = raw.kind == FaultKind.TIMEOUT and budget_ms < self.limits.timeout_ms
            kind, message = ((raw.kind, raw.message) if budget_only
                             else attributed(raw.kind, raw.message, stats))
            logger.log(logging.INFO if budget_only else logging.WARNING,
                       "plugin fault kind=%s plugin=%s version=%s fuel=%d memory=%d ms=%.1f: %s",
                       kind, self.plugin_id, self.version, stats.fuel_consumed,
                       stats.peak_memory_bytes, stats.wall_ms, message)
            raise PluginFault(kind, message, stats)
        assert raw.output is not None
        try:
            output = abi.decode_output(raw.output)
        except EnvelopeError as exc:
            kind, message = attributed(FaultKind.INVALID_OUTPUT, str(exc), stats)
            logger.warning("plugin fault kind=%s plugin=%s version=%s: %s", kind,
                           self.plugin_id, self.version, message)
            raise PluginFault(kind, message, stats) from None
        return CallResult(output, stats)

    def _stats(self, started: float, raw: RawOutcome, host_calls: int) -> CallStats:
        return CallStats(self.plugin_id, self.version, self.limits.fuel - raw.fuel_left,
                         raw.memory_bytes, round((time.perf_counter() - started) * 1000, 3),
                         host_calls, raw.refused_memory_bytes, raw.refused_table_elements)
