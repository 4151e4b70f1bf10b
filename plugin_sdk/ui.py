"""UI blocks: the closed vocabulary a plugin returns in `"ui": [...]`, defined once.

A plugin never sends HTML. It sends a flat list of blocks; the host renders each with its own
escaped template. `UI_SCHEMA` is the JSON Schema of that list (docs/plugin-authoring.md shows every
block); `check_blocks` validates a list and, given the manifest's actions, that every form and
button is bound to a declared action.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

MAX_BLOCKS = 64
MAX_TEXT = 4_000
MAX_SHORT = 200
MAX_ITEMS = 200
ACTION_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"

TONES = ("neutral", "info", "success", "warning", "danger")
FIELD_KINDS = ("text", "textarea", "number", "email", "tel", "date", "select", "checkbox", "hidden")
BUTTON_STYLES = ("primary", "secondary", "danger")
#: Link targets a plugin may produce: phone and SIP dialling, mail, and pages of the CMS itself.
LINK_SCHEMES = ("tel:", "sip:", "sips:", "mailto:")
LINK_PATTERN = r"^(tel:|sips?:|mailto:)[^\s<>\"']{1,300}$|^/[A-Za-z0-9/_\-?=&.%]{0,300}$"
#: A timer's start: a UTC time in RFC 3339, as the context's "now" gives it.
UTC_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"

_short = {"type": "string", "maxLength": MAX_SHORT}
_text = {"type": "string", "maxLength": MAX_TEXT}
_tone = {"enum": list(TONES)}
_scalar = {"type": ["string", "number", "boolean", "null"]}
_action = {"type": "string", "pattern": ACTION_PATTERN}


def _block(type_: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"type": {"const": type_}, **properties},
        "required": ["type", *required],
        "additionalProperties": False,
    }


_FIELD = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,31}$"},
        "label": _short,
        "kind": {"enum": list(FIELD_KINDS)},
        "value": _scalar,
        "placeholder": _short,
        "required": {"type": "boolean"},
        "options": {"type": "array", "maxItems": MAX_ITEMS, "items": {
            "type": "object", "properties": {"value": _short, "label": _short},
            "required": ["value", "label"], "additionalProperties": False}},
    },
    "required": ["name", "label"],
    "additionalProperties": False,
}
_BUTTON = {
    "type": "object",
    "properties": {"label": _short, "action": _action, "style": {"enum": list(BUTTON_STYLES)},
                   "value": _short},
    "required": ["label"],
    "additionalProperties": False,
}

#: Every block type, by name, with its JSON Schema.
BLOCKS: Mapping[str, dict[str, Any]] = {
    "heading": _block("heading", ["text"], text=_short,
                      level={"type": "integer", "enum": [1, 2, 3]}),
    "text": _block("text", ["text"], text=_text, tone=_tone),
    "key_value": _block("key_value", ["items"], items={
        "type": "array", "maxItems": MAX_ITEMS, "items": {
            "type": "object", "properties": {"key": _short, "value": _text},
            "required": ["key", "value"], "additionalProperties": False}}),
    "table": _block("table", ["columns", "rows"],
                    columns={"type": "array", "minItems": 1, "maxItems": 12, "items": _short},
                    rows={"type": "array", "maxItems": MAX_ITEMS,
                          "items": {"type": "array", "maxItems": 12, "items": _scalar}}),
    "list": _block("list", ["items"], items={"type": "array", "maxItems": MAX_ITEMS, "items": _text},
                   ordered={"type": "boolean"}),
    "form": _block("form", ["action"], action=_action, title=_short,
                   fields={"type": "array", "maxItems": 32, "items": _FIELD},
                   buttons={"type": "array", "maxItems": 8, "items": _BUTTON}),
    "alert": _block("alert", ["text"], text=_text, tone=_tone),
    "badge": _block("badge", ["text"], text=_short, tone=_tone),
    "terminal": _block("terminal", ["lines"], lines={
        "type": "array", "maxItems": 500, "items": {"type": "string", "maxLength": 200}}),
    "timeline": _block("timeline", ["items"], items={
        "type": "array", "maxItems": MAX_ITEMS, "items": {
            "type": "object",
            "properties": {"time": _short, "title": _short, "text": _text, "tone": _tone},
            "required": ["time", "title"], "additionalProperties": False}}),
    "link": _block("link", ["text", "href"], text=_short,
                   href={"type": "string", "pattern": LINK_PATTERN}),
    # A running clock ("On call 03:12") the page ticks from `since` without calling the plugin.
    "timer": _block("timer", ["since"], since={"type": "string", "pattern": UTC_TIME_PATTERN},
                    label=_short),
}

UI_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CMS plugin UI blocks",
    "type": "array",
    "maxItems": MAX_BLOCKS,
    "items": {"type": "object", "required": ["type"],
              "properties": {"type": {"enum": sorted(BLOCKS)}},
              # One branch per type, chosen by "type", so errors name the right block.
              "allOf": [{"if": {"properties": {"type": {"const": name}}}, "then": schema}
                        for name, schema in BLOCKS.items()]},
}


def timer_start(since: str) -> datetime | None:
    """A timer's `since` as a UTC time; None unless it is a real one (2026-02-30 is not; a
    leap second, :60, counts as the next second)."""
    try:
        leap = since[17:19] == "60"
        start = datetime.strptime(since[:17] + ("59" if leap else since[17:19]), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return start.replace(tzinfo=timezone.utc) + timedelta(seconds=1 if leap else 0)


def timer_seconds(since: str, now: datetime | None = None) -> int:
    """Whole seconds from a timer block's `since` to `now` (default: the current UTC time),
    negative for a start still to come; 0 for a `since` that is not a real time (check_blocks
    refuses those, so the page never fails on one)."""
    start = timer_start(since)
    if start is None:
        return 0
    return int(((now or datetime.now(timezone.utc)) - start).total_seconds())


def clock_text(seconds: int) -> str:
    """A running clock as the softphone shows it: "03:12", or "1:03:12" past an hour."""
    hours, rest = divmod(max(0, seconds), 3600)  # a start still to come shows 00:00
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class UIError(ValueError):
    """UI blocks that do not follow the vocabulary; `str()` names the block and the field."""


@functools.cache
def _validator() -> Any:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(UI_SCHEMA)
    return jsonschema.Draft202012Validator(UI_SCHEMA)


@functools.cache
def _fast_validators() -> Mapping[str, Any]:
    """Each block type's schema compiled to Python by fastjsonschema: the fast path of every
    panel (about 100x cheaper than interpreting UI_SCHEMA). The per-type schemas use only
    keywords draft-07 and 2020-12 read alike, and tests check both validators agree."""
    import fastjsonschema

    return {name: fastjsonschema.compile({"$schema": "http://json-schema.org/draft-07/schema#",
                                          **schema})
            for name, schema in BLOCKS.items()}


def _fast_problem(blocks: Any) -> str | None:
    """None when `blocks` is valid by the compiled per-type validators, else a short problem."""
    import fastjsonschema

    if not isinstance(blocks, list):
        return "ui: is not of type 'array'"
    if len(blocks) > MAX_BLOCKS:
        return f"ui: is too long (at most {MAX_BLOCKS} blocks)"
    validators = _fast_validators()
    for index, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str) or kind not in validators:
            return f"ui[{index}].type: is not one of {sorted(BLOCKS)}"
        try:
            validators[kind](block)
        except fastjsonschema.JsonSchemaValueException as error:
            return f"ui[{index}]: {error.message.replace('data', kind, 1)}"
    return None


def check_blocks(blocks: Any, actions: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Return `blocks` when they are valid UI blocks; raise UIError naming the first problem.

    With `actions`, every form and button must name one of them.
    """
    problem = _fast_problem(blocks)
    if problem is not None:
        # The exact path, for the message: the first problem in document order, with its path.
        # The compiled validators are the stricter where the two differ (a pattern's `$`
        # before a final newline), so their verdict stands.
        error = next(iter(sorted(_validator().iter_errors(blocks), key=lambda e: list(e.path))),
                     None)
        if error is not None:
            where = "ui" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                   for p in error.path)
            raise UIError(f"{where}: {error.message}")
        raise UIError(problem)
    for index, block in enumerate(blocks):
        if block["type"] == "timer" and timer_start(block["since"]) is None:
            raise UIError(f"ui[{index}].since: {block['since']!r} is not a real UTC time")
    if actions is not None:
        known = set(actions)
        for index, block in enumerate(blocks):
            if block["type"] != "form":
                continue
            bound = [("action", block["action"])] + [
                (f"buttons[{i}].action", b["action"]) for i, b in enumerate(block.get("buttons", []))
                if "action" in b]
            for where, action in bound:
                if action not in known:
                    raise UIError(f"ui[{index}].{where}: {action!r} is not an action of this "
                                  f"plugin (it has {', '.join(sorted(known)) or 'none'})")
    return list(blocks)
