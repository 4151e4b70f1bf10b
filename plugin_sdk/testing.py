"""Running a plugin's test vectors and soak in the production sandbox (`cms-plugin test`).

`Harness` loads a module with the manifest's limits and capabilities into the same runtime the
server uses, with every host op answered from the vector (canned answers, an in-memory kv store)
or, under chaos, failing or timing out. `soak` calls each action many times with one kv store kept
across calls, and `leak_signal` says when fuel or peak memory per call keeps growing.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

from cms.runtime import (DEFAULT_CAPS, DEFAULT_LIMITS, CallContext, CallStats, HostOp, HostOpError, HostOps,
                         Limits, PluginFault, Runtime, RuntimeConfig, attributed)
from plugin_sdk.abi import FaultKind
from cms.runtime.host import TIMED_OUT
from plugin_sdk.capabilities import OPS
from plugin_sdk.manifest import Manifest
from plugin_sdk.ui import UIError, check_blocks
from plugin_sdk.vectors import Vector, subset_mismatch

Chaos = Literal["fail", "timeout"]
#: A series "keeps growing" when its last tenth is this much above its first tenth and each
#: third's median is above the one before.
LEAK_GROWTH = 0.10
MIN_MEMORY_GROWTH = 64 * 1024
MIN_SOAK_CALLS = 30


class KvStore:
    """The soak's and vectors' kv: scope -> key -> JSON value, like the server's per-plugin store."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Any] = {}

    def handle(self, op: str, args: Mapping[str, Any]) -> Any:
        scope = args.get("scope", "agent")
        if scope not in ("plugin", "agent", "client"):
            raise HostOpError("bad_args", "scope must be plugin, agent or client")
        if op == "kv.list":
            prefix = str(args.get("prefix", ""))
            return {"keys": sorted(k for s, k in self.data if s == scope and k.startswith(prefix))}
        key = args.get("key")
        if not isinstance(key, str) or not key:
            raise HostOpError("bad_args", "key must be a non-empty string")
        if op == "kv.get":
            return {"value": self.data.get((scope, key))}
        if op == "kv.set":
            self.data[(scope, key)] = args.get("value")
            return {"ok": True}
        return {"deleted": self.data.pop((scope, key), None) is not None}


@dataclass
class Script:
    """What host ops answer during one call: canned answers, the kv store, or chaos."""

    host: Mapping[str, list[dict[str, Any]]]
    kv: KvStore
    chaos: Chaos | None = None
    used: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def answer(self, op: str, args: dict[str, Any]) -> Any:
        self.calls.append(op)
        if self.chaos == "fail":
            raise RuntimeError("chaos: the host's dependency is down")
        if self.chaos == "timeout":  # the very answer the host gives an op past its limit
            raise HostOpError(TIMED_OUT, f"host op {op!r} took longer than its limit")
        answers = self.host.get(op)
        if answers:
            index = self.used.get(op, 0)
            self.used[op] = index + 1
            answer = answers[min(index, len(answers) - 1)]
            if answer["ok"]:
                return answer.get("result")
            raise HostOpError(answer["error"]["code"], str(answer["error"].get("message", "")))
        if op.startswith("kv."):
            return self.kv.handle(op, args)
        self.missing.append(op)
        raise HostOpError("no_canned_answer", f"the test vector has no answer for {op}")


@dataclass(frozen=True)
class VectorOutcome:
    """A vector's verdict: `problem` is None when it passed."""

    vector: Vector
    problem: str | None
    output: dict[str, Any] | None = None
    fault: str | None = None
    fuel: int = 0
    memory: int = 0
    wall_ms: float = 0.0
    host_calls: int = 0

    @property
    def passed(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Growth:
    """How a per-call series moved over a soak."""

    first: float
    last: float
    leaking: bool

    @property
    def ratio(self) -> float:
        return self.last / self.first if self.first else 1.0


@dataclass(frozen=True)
class SoakResult:
    """One action's soak: the per-call series and the leak verdicts."""

    action: str
    calls: int
    fuel: list[int]
    memory: list[int]
    wall_ms: list[float]
    faults: dict[str, int]
    fuel_growth: Growth
    memory_growth: Growth

    @property
    def leaking(self) -> bool:
        return self.fuel_growth.leaking or self.memory_growth.leaking

    @property
    def problem(self) -> str | None:
        if self.faults:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.faults.items()))
            return f"{sum(self.faults.values())} of {self.calls} calls faulted ({kinds})"
        grew = [f"{what} per call grew {g.ratio:.2f}x ({g.first:,.0f} -> {g.last:,.0f})"
                for what, g in (("peak memory", self.memory_growth), ("fuel", self.fuel_growth))
                if g.leaking]
        return "leak: " + "; ".join(grew) if grew else None

    def summary(self) -> dict[str, Any]:
        times = sorted(self.wall_ms)
        return {
            "action": self.action, "calls": self.calls,
            "fuel_p50": int(statistics.median(self.fuel)) if self.fuel else 0,
            "fuel_max": max(self.fuel, default=0),
            "memory_peak_bytes": max(self.memory, default=0),
            "ms_p50": round(statistics.median(times), 3) if times else 0.0,
            "ms_p95": round(times[int(len(times) * 0.95) - 1], 3) if times else 0.0,
            "fuel_growth": round(self.fuel_growth.ratio, 3),
            "memory_growth": round(self.memory_growth.ratio, 3),
            "faults": self.faults, "problem": self.problem,
        }


def _outcome(vector: Vector, problem: str | None, output: dict[str, Any] | None,
             fault: str | None, stats: CallStats | None) -> VectorOutcome:
    if stats is None:
        return VectorOutcome(vector, problem, output, fault)
    return VectorOutcome(vector, problem, output, fault, stats.fuel_consumed,
                         stats.peak_memory_bytes, stats.wall_ms, stats.host_calls)


def leak_signal(series: Sequence[float], min_growth: float = 0.0) -> Growth:
    """Whether `series` (one value per call, in order) keeps growing: last tenth above first tenth
    by LEAK_GROWTH (and `min_growth` absolute), with rising medians across thirds."""
    if len(series) < MIN_SOAK_CALLS:
        return Growth(float(series[0]) if series else 0.0, float(series[-1]) if series else 0.0, False)
    tenth = max(len(series) // 10, 1)
    first, last = statistics.median(series[:tenth]), statistics.median(series[-tenth:])
    third = len(series) // 3
    thirds = [statistics.median(series[i * third:(i + 1) * third]) for i in range(3)]
    rising = thirds[0] < thirds[1] < thirds[2]
    leaking = rising and last > first * (1 + LEAK_GROWTH) and last - first >= min_growth
    return Growth(float(first), float(last), leaking)


class Harness:
    """A plugin module in the production sandbox, with host ops answered by the harness."""

    def __init__(self, wasm: bytes, manifest: Manifest, artifact_dir: Path,
                 caps: Limits = DEFAULT_CAPS) -> None:
        self.manifest = manifest
        self.limits = DEFAULT_LIMITS.with_requests(dict(manifest.limits), caps)
        self._local = threading.local()
        ops = HostOps([HostOp(name, capability, self._handler(name))
                       for name, capability in OPS.items()])
        self.runtime = Runtime(RuntimeConfig(artifact_dir=artifact_dir, compile_missing=True), ops)
        self.wasm = wasm
        self._plugins: dict[frozenset[str], Any] = {}

    def close(self) -> None:
        self.runtime.close()

    def _handler(self, op: str) -> Callable[[CallContext, dict[str, Any]], Any]:
        def handle(call: CallContext, args: dict[str, Any]) -> Any:
            script: Script = call.context["__script__"]
            return script.answer(op, args)
        return handle

    def plugin(self, grants: frozenset[str]) -> Any:
        """The loaded plugin with `grants` (raises PluginFault when the module cannot load)."""
        plugin = self._plugins.get(grants)
        if plugin is None:
            plugin = self.runtime.load(self.wasm, plugin_id=self.manifest.id,
                                       version=self.manifest.version, limits=self.limits,
                                       grants=grants)
            self._plugins[grants] = plugin
        return plugin

    def call(self, action: str, params: Mapping[str, Any], context: Mapping[str, Any],
             script: Script, grants: frozenset[str] | None = None) -> Any:
        """One call; returns CallResult or raises PluginFault. The script rides in the context
        object the host functions see (never in the envelope the plugin reads)."""
        from plugin_sdk import abi

        plugin = self.plugin(self.manifest.capabilities if grants is None else grants)
        data = abi.encode_input(action, params, context)
        return plugin.call_raw(data, {**context, "__script__": script})

    def run_vector(self, vector: Vector, chaos: Chaos | None = None) -> VectorOutcome:
        """Run one vector and judge it. Under chaos every host op fails or times out, and the
        plugin passes when it answers (ok or not) instead of faulting."""
        script = Script(vector.host, KvStore(), chaos)
        try:
            result = self.call(vector.action, vector.params, vector.context, script, vector.grants)
        except PluginFault as fault:
            if chaos is None and vector.expect.fault == fault.kind:
                problem = None
            else:
                problem = self._fault_problem(fault, script, chaos)
            return _outcome(vector, problem, None, str(fault.kind), fault.stats)
        problem = self._judge(vector, result.output, script, chaos, result.stats)
        return _outcome(vector, problem, result.output, None, result.stats)

    def _fault_problem(self, fault: PluginFault, script: Script, chaos: Chaos | None) -> str:
        if fault.kind == "capability_denied" and "not granted" in fault.message:
            return (f"fault capability_denied: {fault.message}; plugin.toml requests "
                    f"{', '.join(sorted(self.manifest.capabilities)) or 'no capabilities'}")
        if chaos is not None:
            return f"under chaos ({chaos}) the plugin faulted {fault.kind} instead of answering: {fault.message}"
        return f"unexpected fault {fault.kind}: {fault.message}"

    def _judge(self, vector: Vector, output: dict[str, Any], script: Script,
               chaos: Chaos | None, stats: Any) -> str | None:
        if output["ok"]:
            try:
                check_blocks(output.get("ui", []), self.manifest.actions)
            except UIError as exc:
                kind, message = attributed(FaultKind.INVALID_OUTPUT, f"invalid UI: {exc}", stats)
                return message if kind == FaultKind.INVALID_OUTPUT else f"fault {kind}: {message}"
        if chaos is not None:
            return None
        if script.missing:
            return (f"the plugin called {', '.join(sorted(set(script.missing)))}, which the vector "
                    f"has no canned answer for (add it under \"host\")")
        expect = vector.expect
        if expect.fault is not None:
            return f"expected fault {expect.fault}, got an output with ok {str(output['ok']).lower()}"
        if output["ok"] is not expect.ok:
            detail = (f": {output['error']['code']}: {output['error']['message']}"
                      if not output["ok"] else "")
            return f"expected ok {str(expect.ok).lower()}, got ok {str(output['ok']).lower()}{detail}"
        if not output["ok"]:
            code = output["error"]["code"]
            return None if expect.error in (None, code) else f"expected error {expect.error!r}, got {code!r}"
        if expect.has_result:
            mismatch = subset_mismatch(expect.result, output.get("result"), "result")
            if mismatch:
                return mismatch
        if expect.ui is not None:
            return subset_mismatch(expect.ui, output.get("ui", []), "ui")
        return None

    def soak(self, vectors: Sequence[Vector], calls: int,
             progress: Callable[[str, int], None] | None = None,
             time_limit_s: float = 300.0) -> list[SoakResult]:
        """`calls` calls per action, cycling through the action's non-fault vectors, with one kv
        store kept across the calls of an action. Stops an action early at `time_limit_s`."""
        results: list[SoakResult] = []
        by_action: dict[str, list[Vector]] = {}
        for vector in vectors:
            if vector.expect.fault is None:
                by_action.setdefault(vector.action, []).append(vector)
        for action, inputs in by_action.items():
            kv = KvStore()
            fuel: list[int] = []
            memory: list[int] = []
            wall: list[float] = []
            faults: dict[str, int] = {}
            deadline = time.monotonic() + time_limit_s
            for index in range(calls):
                vector = inputs[index % len(inputs)]
                try:
                    stats = self.call(action, vector.params, vector.context,
                                      Script(vector.host, kv), vector.grants).stats
                except PluginFault as fault:
                    faults[str(fault.kind)] = faults.get(str(fault.kind), 0) + 1
                    stats = fault.stats
                if stats is not None:
                    fuel.append(stats.fuel_consumed)
                    memory.append(stats.peak_memory_bytes)
                    wall.append(stats.wall_ms)
                if progress is not None:
                    progress(action, index + 1)
                if time.monotonic() > deadline:
                    break
            results.append(SoakResult(action, len(fuel), fuel, memory, wall, faults,
                                      leak_signal(fuel), leak_signal(memory, MIN_MEMORY_GROWTH)))
        return results
