"""The current request's JSON body, parsed with a size and a nesting limit
(cms.runtime.jsonlimit): 422 naming the problem, never a 500."""

from __future__ import annotations

from typing import Any

from cms.runtime.jsonlimit import MAX_BYTES, JsonRefused, loads


def json_body(what: str, max_bytes: int = MAX_BYTES) -> Any:
    """The current request's JSON body; ValidationFailed (422) when it is missing, not JSON,
    too large or too deep. `what` says what to send, for the message."""
    from flask import request

    from cms.errors import ValidationFailed

    length = request.content_length
    if length is not None and length > max_bytes:
        raise ValidationFailed(f"The body is {length} bytes; the limit is {max_bytes}. Send {what}.")
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ValidationFailed(f"Send {what} (Content-Type: application/json).")
    try:
        return loads(raw, max_bytes=max_bytes)
    except JsonRefused as exc:
        raise ValidationFailed(f"{str(exc)[0].upper()}{str(exc)[1:]}. Send {what}.") from None
