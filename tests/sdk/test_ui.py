"""UI blocks: the closed vocabulary is enforced, forms bind only to declared actions, no HTML."""

from __future__ import annotations

from typing import Any

import pytest

from datetime import datetime, timezone

from plugin_sdk.ui import BLOCKS, UI_SCHEMA, UIError, check_blocks, clock_text, timer_seconds

EVERY_BLOCK: list[dict[str, Any]] = [
    {"type": "heading", "text": "Softphone", "level": 2},
    {"type": "text", "text": "Ready", "tone": "info"},
    {"type": "key_value", "items": [{"key": "Status", "value": "idle"}]},
    {"type": "table", "columns": ["When", "Who"], "rows": [["09:00", "Ada"], ["10:00", None]]},
    {"type": "list", "items": ["one", "two"], "ordered": True},
    {"type": "form", "action": "dial", "title": "Dial",
     "fields": [{"name": "number", "label": "Number", "kind": "tel", "required": True},
                {"name": "code", "label": "Code", "kind": "select",
                 "options": [{"value": "a", "label": "A"}]}],
     "buttons": [{"label": "Call", "style": "primary"},
                 {"label": "Hang up", "action": "hangup", "style": "danger"}]},
    {"type": "alert", "text": "Saved", "tone": "success"},
    {"type": "badge", "text": "3 callbacks", "tone": "warning"},
    {"type": "terminal", "lines": ["AN20DECJFKLHR", "1 BA 178 Y9 J4"]},
    {"type": "timeline", "items": [{"time": "09:12", "title": "Call", "text": "2 min"}]},
    {"type": "link", "text": "Call Ada", "href": "tel:+441234567"},
    {"type": "timer", "label": "On call", "since": "2026-11-24T14:01:57Z"},
]


def test_every_block_type_is_covered_and_valid() -> None:
    assert {b["type"] for b in EVERY_BLOCK} == set(BLOCKS)
    assert check_blocks(EVERY_BLOCK, actions={"dial", "hangup"}) == EVERY_BLOCK
    assert UI_SCHEMA["items"]["properties"]["type"]["enum"] == sorted(BLOCKS)


@pytest.mark.parametrize(("blocks", "message"), [
    ([{"type": "html", "html": "<b>hi</b>"}], "ui[0].type: 'html' is not one of"),
    ([{"type": "text", "text": "hi", "html": "<script>"}],
     "ui[0]: Additional properties are not allowed ('html' was unexpected)"),
    ([{"type": "heading", "text": "x", "level": 7}], "ui[0].level: 7 is not one of [1, 2, 3]"),
    ([{"type": "text"}], "ui[0]: 'text' is a required property"),
    ([{"type": "link", "text": "x", "href": "javascript:alert(1)"}], "ui[0].href: 'javascript:alert(1)' does not match"),
    ([{"type": "link", "text": "x", "href": "https://evil.example"}], "ui[0].href:"),
    ([{"type": "alert", "text": "x", "tone": "red"}], "ui[0].tone: 'red' is not one of"),
    ([{"type": "timer", "since": "2026-11-24T15:01:57+01:00"}], "ui[0].since: '2026-11-24T15:01:57+01:00' does not match"),
    ([{"type": "timer", "since": "yesterday"}], "ui[0].since: 'yesterday' does not match"),
    ([{"type": "timer", "label": "On call"}], "ui[0]: 'since' is a required property"),
    ({"type": "text", "text": "x"}, "ui: {'type': 'text', 'text': 'x'} is not of type 'array'"),
    ([{"type": "text", "text": "ok"}, {"type": "table", "columns": [], "rows": []}],
     "ui[1].columns: [] should be non-empty"),
])
def test_anything_outside_the_vocabulary_is_refused_with_its_place(blocks: Any, message: str) -> None:
    with pytest.raises(UIError) as raised:
        check_blocks(blocks)
    assert str(raised.value).startswith(message)


def test_forms_and_buttons_must_name_declared_actions() -> None:
    form = [{"type": "form", "action": "dial", "buttons": [{"label": "x", "action": "nuke"}]}]
    with pytest.raises(UIError) as raised:
        check_blocks(form, actions={"dial"})
    assert str(raised.value) == "ui[0].buttons[0].action: 'nuke' is not an action of this plugin (it has dial)"
    assert check_blocks(form) == form  # without a manifest only the shape is checked


def test_too_many_blocks_are_refused() -> None:
    with pytest.raises(UIError, match="is too long"):
        check_blocks([{"type": "text", "text": "x"}] * 65)


def _mutations() -> list[dict[str, Any]]:
    """Every block of EVERY_BLOCK with one value (at any depth) replaced by an awkward one."""
    import copy

    awkward: list[Any] = [True, False, 0, 1, 1.0, 7, -1, None, "", "x\n", "tel:+44\n", "/a\n", [],
                          {}, [1], {"a": 1}, "a" * 201, "a" * 4001, "primary", "info", "dial"]
    out = []

    def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [prefix] if prefix else []
        items = value.items() if isinstance(value, dict) else (
            enumerate(value) if isinstance(value, list) else [])
        for key, child in items:
            found += paths(child, prefix + (key,))
        return found

    for block in EVERY_BLOCK:
        for path in paths(block):
            if path == ("type",):
                continue
            for replacement in awkward:
                changed = copy.deepcopy(block)
                target = changed
                for key in path[:-1]:
                    target = target[key]
                target[path[-1]] = replacement
                out.append(changed)
    return out


def test_the_compiled_fast_path_never_accepts_what_the_schema_refuses() -> None:
    from plugin_sdk.ui import _fast_problem, _validator

    cases = _mutations()
    assert len(cases) > 1000
    refused = 0
    for block in cases:
        schema_ok = not list(_validator().iter_errors([block]))
        fast_ok = _fast_problem([block]) is None
        assert not (fast_ok and not schema_ok), block
        refused += not schema_ok
        if fast_ok != schema_ok:  # the compiled path is stricter: the verdict is still a refusal
            with pytest.raises(UIError):
                check_blocks([block])
    assert refused > len(cases) // 3  # the mutations really hit the rules


@pytest.mark.parametrize(("block", "message"), [
    ({"type": "heading", "text": "x", "level": True}, "ui[0].level: True is not of type 'integer'"),
    ({"type": "link", "text": "x", "href": "tel:+441234\n"}, "ui[0]: link.href must match pattern"),
    ({"type": "link", "text": "x", "href": "/clients/1\n"}, "ui[0]: link.href must match pattern"),
])
def test_booleans_and_trailing_newlines_slip_through_no_rule(block: dict[str, Any], message: str) -> None:
    with pytest.raises(UIError) as raised:
        check_blocks([block])
    assert str(raised.value).startswith(message)


def test_a_timer_counts_whole_seconds_from_its_start_and_never_below_zero() -> None:
    now = datetime(2026, 11, 24, 14, 5, 9, 750_000, tzinfo=timezone.utc)
    assert timer_seconds("2026-11-24T14:01:57Z", now) == 192
    assert timer_seconds("2026-11-24T12:59:00.5Z", now) == 3969
    assert timer_seconds("2026-11-24T14:06:00Z", now) == -50  # a start still to come
    assert timer_seconds("2026-06-30T23:59:60Z", datetime(2026, 7, 1, 0, 0, 1, tzinfo=timezone.utc)) == 1
    assert [clock_text(s) for s in (-50, 0, 9, 192, 3969, 36_000)] == [
        "00:00", "00:00", "00:09", "03:12", "1:06:09", "10:00:00"]


@pytest.mark.parametrize("since", ["2026-02-30T10:00:00Z", "2026-13-01T10:00:00Z",
                                   "2026-11-24T24:00:00Z", "2026-11-24T10:61:00Z"])
def test_a_timer_that_is_no_real_time_is_refused_not_rendered(since: str) -> None:
    with pytest.raises(UIError) as raised:
        check_blocks([{"type": "text", "text": "x"}, {"type": "timer", "since": since}])
    assert str(raised.value) == f"ui[1].since: {since!r} is not a real UTC time"
    assert timer_seconds(since) == 0  # and the page would not fail on one
