"""What a plugin call produces: a result or a typed fault, each with the call's statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from plugin_sdk.abi import FaultKind


@dataclass(frozen=True)
class CallStats:
    """Measurements of one call, for metrics and health checks."""

    plugin_id: str
    version: str
    fuel_consumed: int
    peak_memory_bytes: int
    wall_ms: float
    host_calls: int
    #: What a refused `memory.grow` asked for (bytes) and a refused `table.grow` (elements)
    #: during the call; 0 when the limiter refused nothing.
    refused_memory_bytes: int = 0
    refused_table_elements: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CallResult:
    """A call that ran to completion. `output` is the checked envelope; `ok` False is no fault."""

    output: dict[str, Any]
    stats: CallStats

    @property
    def ok(self) -> bool:
        return self.output["ok"] is True


class PluginFault(Exception):
    """A plugin call failed in one of the ABI's fault kinds; nothing of the call survives it."""

    def __init__(self, kind: FaultKind, message: str, stats: CallStats | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.stats = stats

    def as_dict(self) -> dict[str, Any]:
        """{"error": {"kind", "message"}, "stats": {...}} as `cms-plugin run --json` prints it."""
        return {"error": {"kind": str(self.kind), "message": self.message},
                "stats": self.stats.as_dict() if self.stats else None}


def attributed(kind: FaultKind, message: str, stats: CallStats | None) -> tuple[FaultKind, str]:
    """The fault to report for a call that failed with `kind`: when the limiter refused a grow
    during the call, the cause is its memory whatever it then failed with, so the kind is
    `memory_limit` and the message names the refusal and then the symptom. A fault that is
    already `memory_limit` keeps its own message."""
    if kind == FaultKind.MEMORY_LIMIT or stats is None or not (
            stats.refused_memory_bytes or stats.refused_table_elements):
        return kind, message
    refused = []
    if stats.refused_memory_bytes:
        refused.append(f"a grow to {mib(stats.refused_memory_bytes)} was refused")
    if stats.refused_table_elements:
        refused.append(f"a table grow to {stats.refused_table_elements} elements was refused")
    return FaultKind.MEMORY_LIMIT, f"memory limit reached ({'; '.join(refused)}); then: {message}"


def mib(size: int) -> str:
    """`size` bytes as people read it: "17 MiB", "16.5 MiB"."""
    value = size / (1024 * 1024)
    return f"{value:.0f} MiB" if value == int(value) else f"{value:.1f} MiB"


class HostFault(Exception):
    """Raised inside a host function to end the call with `kind` (never seen by the guest)."""

    def __init__(self, kind: FaultKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ArtifactError(Exception):
    """A compiled artifact is missing, stale or corrupt and may not be rebuilt here."""


def one_line(exc: BaseException) -> str:
    """An error's whole message on one line (wasmtime puts the cause on later lines)."""
    return " ".join(str(exc).split()) or type(exc).__name__
