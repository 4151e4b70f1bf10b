"""Per-call resource limits: configured defaults, admin caps, and what a manifest may request."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from plugin_sdk.abi import MAX_INPUT_BYTES, MAX_OUTPUT_BYTES

MIB = 1024 * 1024
#: The hard ceilings no configuration can raise (the pooling allocator reserves slots this large).
ABSOLUTE_MAX_MEMORY_BYTES = 128 * MIB
ABSOLUTE_MAX_STACK_BYTES = 512 * 1024


class LimitsError(ValueError):
    """A limit is out of range; `str()` names the limit and the allowed range."""


@dataclass(frozen=True)
class Limits:
    """What one plugin call may use. Every call gets a fresh Store set to these values."""

    fuel: int = 50_000_000
    memory_bytes: int = 16 * MIB
    timeout_ms: int = 1_000
    max_host_calls: int = 64
    table_elements: int = 10_000
    input_bytes: int = MAX_INPUT_BYTES
    output_bytes: int = MAX_OUTPUT_BYTES

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LimitsError(f"{f.name} must be a positive integer, not {value!r}")
        if self.memory_bytes > ABSOLUTE_MAX_MEMORY_BYTES:
            raise LimitsError(f"memory_bytes may be at most {ABSOLUTE_MAX_MEMORY_BYTES} (128 MiB)")
        if self.input_bytes > MAX_INPUT_BYTES or self.output_bytes > MAX_OUTPUT_BYTES:
            raise LimitsError("input_bytes and output_bytes may not exceed the ABI's maxima")

    def within(self, caps: Limits) -> Limits:
        """Raise LimitsError unless every value is at most the matching cap; return self."""
        for f in fields(self):
            if getattr(self, f.name) > getattr(caps, f.name):
                raise LimitsError(
                    f"{f.name} {getattr(self, f.name)} exceeds the admin cap {getattr(caps, f.name)}"
                )
        return self

    def with_requests(self, requested: Mapping[str, Any], caps: Limits) -> Limits:
        """These defaults overridden by a manifest's requests, which must stay within `caps`.

        Accepted keys: fuel, memory_mb, timeout_ms (as in plugin.toml). Raises LimitsError.
        """
        changes: dict[str, int] = {}
        for key, value in requested.items():
            if key == "memory_mb":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise LimitsError(f"memory_mb must be an integer, not {value!r}")
                changes["memory_bytes"] = value * MIB
            elif key in ("fuel", "timeout_ms"):
                changes[key] = value
            else:
                raise LimitsError(f"unknown limit {key!r} (expected fuel, memory_mb or timeout_ms)")
        return replace(self, **changes).within(caps)


DEFAULT_LIMITS = Limits()
DEFAULT_CAPS = Limits(fuel=1_000_000_000, memory_bytes=ABSOLUTE_MAX_MEMORY_BYTES, timeout_ms=10_000,
                      max_host_calls=64)
