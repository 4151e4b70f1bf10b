"""One wasmtime Engine and one epoch ticker per process, created lazily after fork.

A Gunicorn worker inherits no threads from the master, and an Engine made before fork must not be
used after it, so `EngineHost.get()` compares the pid and builds a fresh Engine (and ticker) in
every process that uses the runtime: with or without `preload_app`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from dataclasses import dataclass

import wasmtime
from wasmtime import _ffi as ffi

from cms.runtime.limits import ABSOLUTE_MAX_MEMORY_BYTES, ABSOLUTE_MAX_STACK_BYTES

logger = logging.getLogger(__name__)

#: The exact wasmtime-py release the fast call path was written against (see sandbox.py).
WASMTIME_VERSION = "50.0.1"


@dataclass(frozen=True)
class EngineSettings:
    """Engine configuration. Part of every artifact's key: a change invalidates artifacts."""

    max_wasm_stack: int = ABSOLUTE_MAX_STACK_BYTES
    epoch_tick_ms: int = 10
    #: Instance slots in the pooling allocator: the most calls in flight at once in a process.
    pool_slots: int = 32
    max_memory_bytes: int = ABSOLUTE_MAX_MEMORY_BYTES
    #: Guard pages after each linear memory. With a reservation of only `max_memory_bytes` (not
    #: wasmtime's default 4 GiB), bounds checks are compiled in, and a process's 32 slots take
    #: about 4 GiB of address space instead of 130 GiB.
    memory_guard_bytes: int = 2 * 1024 * 1024

    def fingerprint(self) -> str:
        """A short hash of everything that decides whether a compiled artifact fits this engine."""
        text = (f"wasmtime={wasmtime_version()};fuel=1;epoch=1;stack={self.max_wasm_stack};"
                f"reserve={self.max_memory_bytes};guard={self.memory_guard_bytes};"
                f"simd=1;bulk=1;threads=0")
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache
def wasmtime_version() -> str:
    """The installed wasmtime-py version (read from package metadata once per process)."""
    from importlib.metadata import version

    return version("wasmtime")


def build_config(settings: EngineSettings) -> wasmtime.Config:
    """The Config every engine uses: fuel, epochs, a small stack, no parallel compilation.

    Parallel compilation is off everywhere: a process that ever compiled in parallel hangs when a
    forked child compiles (WASMTIME_NOTES). Compiling happens at build/publish time, so the cost is
    a few milliseconds per module, once.
    """
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.max_wasm_stack = settings.max_wasm_stack
    config.parallel_compilation = False
    config.cranelift_opt_level = "speed"
    config.wasm_threads = False
    config.wasm_multi_memory = False
    config.memory_reservation = settings.max_memory_bytes
    config.memory_guard_size = settings.memory_guard_bytes
    config.memory_reservation_for_growth = 0
    _use_pooling_allocator(config, settings)
    return config


def _use_pooling_allocator(config: wasmtime.Config, settings: EngineSettings) -> None:
    """Preallocated instance slots: a fresh instance per call costs microseconds, not a mmap."""
    pooling = ffi.wasmtime_pooling_allocation_config_new()
    ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pooling, settings.pool_slots)
    ffi.wasmtime_pooling_allocation_config_total_memories_set(pooling, settings.pool_slots)
    ffi.wasmtime_pooling_allocation_config_total_tables_set(pooling, settings.pool_slots)
    ffi.wasmtime_pooling_allocation_config_max_memories_per_module_set(pooling, 1)
    ffi.wasmtime_pooling_allocation_config_max_tables_per_module_set(pooling, 1)
    ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pooling, settings.max_memory_bytes)
    ffi.wasmtime_pooling_allocation_config_table_elements_set(pooling, 10_000)
    # Keep the first pages of a slot resident: resetting them is cheaper than faulting them in.
    ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pooling, 1024 * 1024)
    ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(pooling, 64 * 1024)
    ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pooling)
    ffi.wasmtime_pooling_allocation_config_delete(pooling)


class EngineHost:
    """Owns this process's Engine and epoch ticker; rebuilds both after a fork."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._engine: wasmtime.Engine | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def get(self) -> wasmtime.Engine:
        """This process's Engine, with its ticker running."""
        engine = self._engine
        if engine is not None and self._pid == os.getpid():
            return engine
        with self._lock:
            if self._engine is None or self._pid != os.getpid():
                self._start()
            assert self._engine is not None
            return self._engine

    @property
    def generation(self) -> int | None:
        """The pid the current Engine belongs to (modules must be reloaded when it changes)."""
        return self._pid

    def ticker_alive(self) -> bool:
        """Whether this process's epoch ticker thread is running."""
        return self._pid == os.getpid() and self._ticker is not None and self._ticker.is_alive()

    def _start(self) -> None:
        # After fork the parent's engine and ticker belong to another process: drop them unused.
        self._engine = wasmtime.Engine(build_config(self.settings))
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._ticker = threading.Thread(
            target=_tick, args=(self._engine, self.settings.epoch_tick_ms / 1000, self._stop),
            name="cms-wasm-epoch", daemon=True,
        )
        self._ticker.start()
        logger.debug("wasmtime engine started in pid %s", self._pid)

    def close(self) -> None:
        """Stop the ticker and drop the Engine (tests; a worker simply exits). Its sandbox pool
        is unmapped once the plugins loaded from it are gone too."""
        self._stop.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=1.0)
        with self._lock:
            self._engine, self._ticker, self._pid = None, None, None


def _tick(engine: wasmtime.Engine, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        engine.increment_epoch()
