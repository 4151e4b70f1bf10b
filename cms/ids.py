"""Record ids from outside: the one range every id must be in, a URL converter for paths and one
parser for query strings, forms and JSON bodies.

Ids are 64-bit signed integers in every database this runs on, so anything outside
1..2**63-1 can name no record: in a path it is a 404 (the converter does not match), in a query
or body a 422 naming the field. Nothing outside the range ever reaches a query (SQLite raises
OverflowError on it, which would be a 500).
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter

from cms.errors import ValidationFailed

MAX_ID = 2**63 - 1


def is_id(value: Any) -> bool:
    """Whether `value` is an int (not a bool) in 1..MAX_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def parse_id(value: Any, name: str) -> int | None:
    """An id from a query string, form field or JSON value: None when absent or empty;
    ValidationFailed (422, naming `name`) when it is not a whole number in 1..2**63-1."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19:
            raise _invalid(name)
        value = int(text)
    if not is_id(value):
        raise _invalid(name)
    return int(value)


def _invalid(name: str) -> ValidationFailed:
    return ValidationFailed(f"{name} must be a record id (a whole number from 1 to {MAX_ID}).",
                            {name: ["Not a record id."]})


class IdConverter(IntegerConverter):
    """`<id:name>`: a path segment that is a record id; anything else is no match (404)."""

    def __init__(self, map: Any) -> None:  # noqa: A002 - werkzeug's signature
        super().__init__(map, min=1, max=MAX_ID)
