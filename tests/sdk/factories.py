"""Manifest text for SDK tests (a valid one, and a way to change one field), and the host ops
the guest-library tests load their probe plugins with."""

from __future__ import annotations

from typing import Any

from cms.runtime import CallContext, HostOp, HostOpError, HostOps

MANIFEST = '''\
id = "hello"
name = "Hello"
version = "0.1.0"
abi = 1
description = "Greets the agent."
authors = ["Ada <ada@example.com>"]
min_cms_version = "0.1.0"
fallback = "Hello is unavailable right now."
capabilities = ["log", "kv"]

[build]
lang = "zig"
source = "src/main.zig"

[limits]
fuel = 5_000_000
memory_mb = 4
timeout_ms = 500

[[panels]]
slot = "dashboard.widget"
action = "widget"
title = "Hello"

[actions.widget]
description = "The widget."
params = { type = "object", additionalProperties = false }

[actions.greet]
description = "Greet someone."
[actions.greet.params]
type = "object"
required = ["name"]
additionalProperties = false
properties.name = { type = "string", minLength = 1, maxLength = 40 }
'''


def manifest_text(replace: dict[str, str] | None = None, append: str = "") -> str:
    """MANIFEST with each `old -> new` replacement made (each must occur) and `append` added."""
    text = MANIFEST
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text + append


class GuestHost:
    """Host ops for these tests: an in-memory kv (scope -> key -> value) that can be switched to
    answer `unavailable`, and ops that fail or time out."""

    def __init__(self) -> None:
        self.kv: dict[tuple[str, str], Any] = {}
        self.kv_down = False

    def ops(self) -> HostOps:
        return HostOps([
            *(HostOp(f"kv.{name}", "kv", self._kv(name)) for name in ("get", "set", "delete", "list")),
            HostOp("test.down", "test", self._down),
            HostOp("test.echo", "test", lambda call, args: {"args": args}),
        ])

    def _kv(self, op: str) -> Any:
        def handle(call: CallContext, args: dict[str, Any]) -> Any:
            if self.kv_down:
                raise HostOpError("unavailable", "kv is down")
            scope = args.get("scope", "agent")
            if op == "list":
                return {"keys": sorted(k for s, k in self.kv if s == scope
                                       and k.startswith(args.get("prefix", "")))}
            key = (scope, args["key"])
            if op == "get":
                return {"value": self.kv.get(key)}
            if op == "set":
                self.kv[key] = args["value"]
                return {"ok": True}
            return {"deleted": self.kv.pop(key, None) is not None}
        return handle

    @staticmethod
    def _down(call: CallContext, args: dict[str, Any]) -> Any:
        raise HostOpError("unavailable", "the service is down")
