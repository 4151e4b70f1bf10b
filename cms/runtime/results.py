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
