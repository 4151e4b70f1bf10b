"""Manifest text for SDK tests: a valid one, and a way to change one field."""

from __future__ import annotations

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
