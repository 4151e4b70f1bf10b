"""Test vectors: the format is checked with precise errors; subset matching; the leak signal."""

from __future__ import annotations

import json

import pytest

from plugin_sdk.manifest import parse_manifest
from plugin_sdk.testing import MIN_SOAK_CALLS, leak_signal
from plugin_sdk.vectors import VectorError, parse_vectors, subset_mismatch
from tests.sdk.factories import MANIFEST

M = parse_manifest(MANIFEST)


def vectors(value: object) -> list:  # type: ignore[type-arg]
    return parse_vectors(json.dumps(value), "tests/v.json", M)


def test_a_vector_file_may_hold_one_vector_or_a_list() -> None:
    one = {"name": "a", "action": "widget", "expect": {"ok": True}}
    assert len(vectors(one)) == 1
    many = vectors([one, {"name": "b", "action": "greet", "params": {"name": "Ada"},
                          "host": {"kv.get": [{"ok": True, "result": {"value": 2}},
                                              {"ok": False, "error": {"code": "timeout", "message": ""}}]},
                          "expect": {"fault": "memory_limit"}}])
    assert [v.name for v in many] == ["a", "b"]
    assert len(many[1].host["kv.get"]) == 2 and many[1].expect.fault == "memory_limit"


@pytest.mark.parametrize(("vector", "message"), [
    ({"action": "widget", "expect": {"ok": True}}, "tests/v.json[0].name: expected a non-empty string"),
    ({"name": "a", "action": "dance", "expect": {"ok": True}},
     "tests/v.json: 'a': action: expected one of widget, greet, got 'dance'"),
    ({"name": "a", "action": "greet", "params": {"nom": "x"}, "expect": {"ok": True}},
     "tests/v.json: 'a': params do not match the schema of action 'greet': 'name' is a required property"),
    ({"name": "a", "action": "widget", "host": {"db.drop": {"ok": True}}, "expect": {"ok": True}},
     "tests/v.json: 'a': host.db.drop: no such op"),
    ({"name": "a", "action": "widget", "host": {"kv.get": {"value": 1}}, "expect": {"ok": True}},
     'tests/v.json: \'a\': host.kv.get: expected {"ok": true, "result": ...}'),
    ({"name": "a", "action": "widget", "expect": {"fault": "meltdown"}},
     "tests/v.json: 'a': expect.fault: expected only a fault kind, one of fuel_exhausted"),
    ({"name": "a", "action": "widget", "expect": {"ok": "yes"}},
     "tests/v.json: 'a': expect.ok: expected true or false"),
    ({"name": "a", "action": "widget", "expect": {"ok": False, "ui": []}},
     "tests/v.json: 'a': expect: result and ui only with \"ok\": true"),
    ({"name": "a", "action": "widget", "expect": {"ok": True}, "when": 1},
     "tests/v.json: 'a': unknown field 'when'"),
])
def test_format_errors_name_the_file_vector_and_field(vector: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(VectorError) as raised:
        vectors([vector])
    assert str(raised.value).startswith(message)


def test_not_json_is_reported_with_the_file() -> None:
    with pytest.raises(VectorError, match=r"^tests/v.json: not valid JSON"):
        parse_vectors("{", "tests/v.json", M)


@pytest.mark.parametrize(("expected", "actual", "mismatch"), [
    ({"a": 1}, {"a": 1, "b": 2}, None),
    ({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}]}, "x": 0}, None),
    ({"a": 1}, {"a": 2}, ".a: expected 1, got 2"),
    ({"a": 1}, {}, ".a: missing"),
    ([1, 2], [1, 2, 3], ".: expected 2 items, got 3 items"),
    ({"a": 1}, {"a": 1.0}, None),
    ({"a": True}, {"a": 1}, ".a: expected true, got 1"),
    ({"a": "1"}, {"a": 1}, '.a: expected "1", got 1'),
])
def test_subset_matching(expected: object, actual: object, mismatch: str | None) -> None:
    assert subset_mismatch(expected, actual) == mismatch


def test_leak_signal_sees_steady_growth_and_ignores_noise_and_steps() -> None:
    flat = [1000 + (i * 37) % 50 for i in range(1000)]  # noisy but flat
    assert not leak_signal(flat).leaking
    growing = [1000 + 2 * i for i in range(1000)]
    signal = leak_signal(growing)
    assert signal.leaking and signal.ratio > 2.5
    one_step = [65536] * 10 + [131072] * 990  # a warm-up step, then flat
    assert not leak_signal(one_step, 65536).leaking
    small = [100_000 + i for i in range(1000)]  # +1% over the soak: within tolerance
    assert not leak_signal(small).leaking
    assert not leak_signal(growing[:MIN_SOAK_CALLS - 1]).leaking  # too few calls to judge
    pages = [65536 * (2 + i // 100) for i in range(1000)]  # one more page every 100 calls
    assert leak_signal(pages, 65536).leaking
