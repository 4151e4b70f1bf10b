"""Good calls: the envelope in, the checked output out, with stats; nothing survives a call."""

from __future__ import annotations

import pytest

from cms.runtime import EnvelopeError, Limits, Runtime
from plugin_sdk.abi import MAX_INPUT_BYTES, pack
from tests.runtime import guests
from tests.runtime.conftest import load


def test_echo_sees_the_envelope_and_reports_stats(runtime: Runtime) -> None:
    plugin = load(runtime, guests.module())
    result = plugin.call("greet", {"name": "Zoë"}, {"agent": {"id": 7}})
    assert result.ok
    assert result.output["echo"] == {"abi": 1, "action": "greet", "params": {"name": "Zoë"},
                                     "context": {"agent": {"id": 7}}}
    stats = result.stats
    assert (stats.plugin_id, stats.version) == ("guest", "0.1.0")
    assert 0 < stats.fuel_consumed < 10_000
    assert stats.peak_memory_bytes == 65536
    assert stats.wall_ms > 0 and stats.host_calls == 0


def test_a_global_counter_sees_one_on_every_call(runtime: Runtime) -> None:
    data = b'{"ok":true,"n":0}'
    counter = f"""
  (global $calls (mut i32) (i32.const 0))
  (func (export "cms_handle") (param i32 i32) (result i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store8 (i32.const {16 + data.index(b"0")}) (i32.add (i32.const 48) (global.get $calls)))
    (i64.const {pack(16, len(data))}))"""
    plugin = load(runtime, guests.module(handle=counter, data=data))
    assert [plugin.call("count").output for _ in range(5)] == [{"ok": True, "n": 1}] * 5


def test_memory_grown_in_one_call_is_gone_in_the_next(runtime: Runtime) -> None:
    data = b'{"ok":true,"m":1}'
    grow_then_answer = f"""
  (func (export "cms_handle") (param $p i32) (param $l i32) (result i64)
    (drop (memory.grow (i32.const 100)))
    (i64.const {pack(16, len(data))}))"""
    plugin = load(runtime, guests.module(handle=grow_then_answer, data=data))
    peaks = [plugin.call("grow").stats.peak_memory_bytes for _ in range(3)]
    assert peaks == [101 * 65536] * 3


def test_ok_false_is_an_answer_not_a_fault(runtime: Runtime) -> None:
    body = b'{"ok":false,"error":{"code":"no_client","message":"No such client"}}'
    result = load(runtime, guests.constant(body)).call("lookup")
    assert not result.ok
    assert result.output["error"] == {"code": "no_client", "message": "No such client"}


def test_bad_input_is_refused_before_any_sandbox(runtime: Runtime) -> None:
    plugin = load(runtime, guests.module())
    with pytest.raises(EnvelopeError, match="at most 65536"):
        plugin.call("big", {"blob": "x" * MAX_INPUT_BYTES})
    with pytest.raises(EnvelopeError, match="JSON"):
        plugin.call("odd", {"when": object()})
    with pytest.raises(EnvelopeError, match="action"):
        plugin.call("")


def test_a_smaller_input_limit_applies(runtime: Runtime) -> None:
    plugin = load(runtime, guests.module(), limits=Limits(input_bytes=100))
    with pytest.raises(EnvelopeError, match="the limit is 100"):
        plugin.call("big", {"blob": "x" * 100})
