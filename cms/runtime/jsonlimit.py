"""JSON from outside the process (HTTP bodies, guests' host-call requests), parsed with a size
and a nesting limit: never a RecursionError. Pure; cms.jsonbody reads Flask requests with it."""

from __future__ import annotations

import json
import re
from typing import Any

#: Deeper than anything the CMS's own schemas need (a booking is 4 levels), far below Python's
#: recursion limit.
MAX_DEPTH = 32
#: The plugin API's params, the admin API's flags and rollouts: small objects.
MAX_BYTES = 256 * 1024

#: One pass: a string (an unterminated one runs to the end, matched once), or a bracket.
_TOKENS = re.compile(rb'"(?:[^"\\]+|\\.)*"?|[\[\]{}]')


class JsonRefused(ValueError):
    """Not JSON, too large or too deep; `str()` says which, in one line."""


def depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in `raw` (brackets inside strings ignored)."""
    deepest = level = 0
    for match in _TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        elif token in (b"]", b"}"):
            level -= 1
    return deepest


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """Parse JSON text; raises JsonRefused when it is larger than `max_bytes`, nested deeper
    than `max_depth`, or not UTF-8 JSON."""
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonRefused(f"the JSON body is {len(data)} bytes; the limit is {max_bytes}")
    if depth(data) > max_depth:
        raise JsonRefused(f"the JSON is nested deeper than {max_depth} levels")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise JsonRefused(f"the body is not UTF-8 JSON: {exc}") from None
