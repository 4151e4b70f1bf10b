"""ABI v1 between the CMS host and a WebAssembly plugin: names, limits, fault kinds, envelopes.

This module is the single definition of the ABI. The host runtime (`cms.runtime`) and the SDK
both import it; `docs/plugin-abi.md` describes it for authors in other languages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Mapping

ABI_VERSION = 1

# Exports of the guest.
EXPORT_MEMORY = "memory"
EXPORT_ALLOC = "cms_alloc"
EXPORT_HANDLE = "cms_handle"
EXPORT_ABI_VERSION = "cms_abi_version"

#: Required function exports and their (params, results) wasm value types.
REQUIRED_FUNCTIONS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    EXPORT_ALLOC: (("i32",), ("i32",)),
    EXPORT_HANDLE: (("i32", "i32"), ("i64",)),
}
OPTIONAL_FUNCTIONS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    EXPORT_ABI_VERSION: ((), ("i32",)),
}

#: The only module a guest may import from.
HOST_MODULE = "cms"


@dataclass(frozen=True)
class HostImport:
    """A function the host offers in module `cms`: its wasm signature and what it is for."""

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]
    doc: str


#: Host functions of ABI v1. `call` carries every capability as JSON (see docs/plugin-abi.md).
HOST_IMPORTS: Mapping[str, HostImport] = {
    imp.name: imp
    for imp in (
        HostImport(
            "log", ("i32", "i32", "i32"), (),
            "log(level, ptr, len): a UTF-8 line into the plugin log; level 0 debug .. 3 error.",
        ),
        HostImport(
            "call", ("i32", "i32"), ("i64",),
            "call(ptr, len) -> packed: a JSON request {\"op\": ..., \"args\": {...}}; the JSON "
            "answer is written into guest memory through cms_alloc and returned packed.",
        ),
    )
}

LOG_LEVELS = ("debug", "info", "warning", "error")

#: `cms.call` op with which a guest gives up cleanly, needing no capability:
#: `{"op": "abort", "args": {"kind": "memory_limit", "message": "..."}}` ends the call with that
#: fault kind. Guest libraries send it when an allocation fails (instead of writing through
#: address 0) and on a panic (`trap`). The request must not need allocation: keep it static.
ABORT_OP = "abort"
ABORT_KINDS = ("memory_limit", "trap")

# Sizes, in bytes.
MAX_INPUT_BYTES = 64 * 1024
MAX_OUTPUT_BYTES = 256 * 1024
WASM_PAGE_BYTES = 64 * 1024


class FaultKind(StrEnum):
    """Every way a plugin call can fail. These exact strings appear in the API, logs and metrics."""

    FUEL_EXHAUSTED = "fuel_exhausted"
    MEMORY_LIMIT = "memory_limit"
    TIMEOUT = "timeout"
    TRAP = "trap"
    INVALID_OUTPUT = "invalid_output"
    ABI_VIOLATION = "abi_violation"
    CAPABILITY_DENIED = "capability_denied"
    HOST_ERROR = "host_error"


class EnvelopeError(ValueError):
    """A message does not follow the ABI envelope; `str()` says what is wrong."""


def pack(ptr: int, length: int) -> int:
    """The i64 a guest returns for output at `ptr` of `length` bytes: (ptr << 32) | length."""
    return ((ptr & 0xFFFFFFFF) << 32) | (length & 0xFFFFFFFF)


def unpack(value: int) -> tuple[int, int]:
    """(ptr, length) from a packed i64 (signed or unsigned)."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value >> 32, value & 0xFFFFFFFF


def encode_input(action: str, params: Mapping[str, Any] | None = None,
                 context: Mapping[str, Any] | None = None) -> bytes:
    """The UTF-8 JSON input envelope. Raises EnvelopeError on a bad action or oversized input."""
    if not isinstance(action, str) or not action or len(action) > 64:
        raise EnvelopeError("action must be a non-empty string of at most 64 characters")
    envelope = {"abi": ABI_VERSION, "action": action, "params": dict(params or {}),
                "context": dict(context or {})}
    try:
        data = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise EnvelopeError(f"params and context must be JSON values: {exc}") from None
    check_input_size(len(data))
    return data


def check_input_size(size: int) -> None:
    """Raise EnvelopeError when an input of `size` bytes exceeds MAX_INPUT_BYTES."""
    if size > MAX_INPUT_BYTES:
        raise EnvelopeError(f"input is {size} bytes; at most {MAX_INPUT_BYTES} are allowed")


def check_input(data: bytes) -> dict[str, Any]:
    """Parse and check a whole input envelope (as `cms-plugin run --input` gives it)."""
    check_input_size(len(data))
    envelope = _parse_json_object(data, "input")
    if envelope.get("abi") != ABI_VERSION:
        raise EnvelopeError(f'input must have "abi": {ABI_VERSION}')
    action = envelope.get("action")
    if not isinstance(action, str) or not action:
        raise EnvelopeError('input must have a non-empty string "action"')
    for key in ("params", "context"):
        if not isinstance(envelope.get(key, {}), dict):
            raise EnvelopeError(f'input "{key}" must be an object')
    return envelope


def decode_output(data: bytes) -> dict[str, Any]:
    """Parse and check an output envelope: {"ok": true, ...} or {"ok": false, "error": {...}}.

    Raises EnvelopeError when the output is too large, not UTF-8, not JSON or not an envelope.
    """
    if len(data) > MAX_OUTPUT_BYTES:
        raise EnvelopeError(f"output is {len(data)} bytes; at most {MAX_OUTPUT_BYTES} are allowed")
    output = _parse_json_object(data, "output")
    ok = output.get("ok")
    if ok is True:
        return output
    if ok is not False:
        raise EnvelopeError('output must have "ok": true or false')
    error = output.get("error")
    if not (isinstance(error, dict) and isinstance(error.get("code"), str)
            and isinstance(error.get("message"), str)):
        raise EnvelopeError('an "ok": false output needs "error": {"code": str, "message": str}')
    return output


def _parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"{what} is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise EnvelopeError(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object")
    return value
