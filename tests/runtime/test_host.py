"""Host functions: capability gates, the per-call budget, handler failures and timeouts."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from cms.runtime import CallContext, HostOp, HostOpError, HostOps, Limits, PluginFault, Runtime
from plugin_sdk.abi import FaultKind
from tests.runtime import guests
from tests.runtime.conftest import make_runtime

SEEN: list[dict[str, Any]] = []


def _echo(call: CallContext, args: dict[str, Any]) -> Any:
    SEEN.append({"plugin": call.plugin_id, "args": args, "agent": call.context.get("agent")})
    return {"got": args}


def _boom(call: CallContext, args: dict[str, Any]) -> Any:
    raise RuntimeError("database exploded")


def _refuse(call: CallContext, args: dict[str, Any]) -> Any:
    raise HostOpError("not_found", "No such client")


def _hang(call: CallContext, args: dict[str, Any]) -> Any:
    time.sleep(1.0)
    return "late"


OPS = HostOps([
    HostOp("test.echo", "clients.read", _echo),
    HostOp("test.boom", "clients.read", _boom),
    HostOp("test.refuse", "clients.read", _refuse),
    HostOp("test.hang", "clients.read", _hang, timeout_ms=100, blocking=True),
])


@pytest.fixture
def host_runtime(tmp_path: Path, backend: str) -> Runtime:
    return make_runtime(tmp_path, backend, OPS)


def run(runtime: Runtime, requests: list[dict[str, Any]], grants: set[str], log_lines: int = 0,
        ) -> Any:
    plugin = runtime.load(guests.host_caller(requests, log_lines=log_lines), plugin_id="caller",
                          version="2.0.0", grants=frozenset(grants))
    return plugin.call("go", {}, {"agent": {"id": 42}})


def test_a_granted_op_answers_through_guest_memory(host_runtime: Runtime) -> None:
    SEEN.clear()
    result = run(host_runtime, [{"op": "test.echo", "args": {"q": "Zoë"}}], {"clients.read"})
    assert result.output["echo"] == {"ok": True, "result": {"got": {"q": "Zoë"}}}
    assert result.stats.host_calls == 1
    assert SEEN == [{"plugin": "caller", "args": {"q": "Zoë"}, "agent": {"id": 42}}]


def test_an_op_without_its_capability_is_denied(host_runtime: Runtime) -> None:
    SEEN.clear()
    with pytest.raises(PluginFault) as raised:
        run(host_runtime, [{"op": "test.echo", "args": {}}], {"log"})
    assert raised.value.kind == FaultKind.CAPABILITY_DENIED
    assert "'clients.read'" in raised.value.message
    assert SEEN == []


def test_log_needs_its_capability_too(host_runtime: Runtime) -> None:
    with pytest.raises(PluginFault) as raised:
        run(host_runtime, [{"op": "test.echo"}], {"clients.read"}, log_lines=1)
    assert raised.value.kind == FaultKind.CAPABILITY_DENIED


def test_log_lines_reach_the_plugin_log(host_runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cms.plugins"):
        result = run(host_runtime, [{"op": "test.echo"}], {"clients.read", "log"}, log_lines=2)
    assert result.stats.host_calls == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "cms.plugins.caller"]
    assert lines == ['caller@2.0.0: {"ok"'] * 2


def test_more_than_64_host_calls_end_the_call(host_runtime: Runtime) -> None:
    with pytest.raises(PluginFault) as raised:
        run(host_runtime, [{"op": "test.echo"}] * 65, {"clients.read"})
    assert raised.value.kind == FaultKind.CAPABILITY_DENIED
    assert "more than 64 host calls" in raised.value.message
    assert raised.value.stats is not None and raised.value.stats.host_calls == 65


def test_64_host_calls_are_allowed(host_runtime: Runtime) -> None:
    assert run(host_runtime, [{"op": "test.echo"}] * 64, {"clients.read"}).stats.host_calls == 64


def test_a_raising_host_function_is_an_unavailable_answer(host_runtime: Runtime) -> None:
    """The host's own failure is not the plugin's fault: the guest is told and goes on."""
    result = run(host_runtime, [{"op": "test.boom"}, {"op": "test.echo"}], {"clients.read"})
    assert result.output["echo"] == {"ok": True, "result": {"got": {}}}  # the later call worked
    assert result.stats.host_calls == 2
    assert "database exploded" not in str(result.output)  # no internals reach the plugin


def test_the_unavailable_answer_names_the_op(host_runtime: Runtime) -> None:
    result = run(host_runtime, [{"op": "test.boom"}], {"clients.read"})
    assert result.output["echo"] == {"ok": False, "error": {
        "code": "unavailable", "message": "host op 'test.boom' failed (RuntimeError); try again later"}}


def test_an_expected_op_error_is_an_answer_not_a_fault(host_runtime: Runtime) -> None:
    result = run(host_runtime, [{"op": "test.refuse"}], {"clients.read"})
    assert result.output["echo"] == {"ok": False, "error": {"code": "not_found",
                                                             "message": "No such client"}}


def test_unknown_ops_and_bad_requests_are_answers(host_runtime: Runtime) -> None:
    result = run(host_runtime, [{"op": "nope"}], set())
    assert result.output["echo"]["error"]["code"] == "unknown_op"
    result = run(host_runtime, [{"args": {}}], set())
    assert result.output["echo"]["error"]["code"] == "bad_request"


def test_a_hanging_host_function_is_a_timeout_answer(host_runtime: Runtime) -> None:
    result = run(host_runtime, [{"op": "test.hang"}], {"clients.read"})
    assert result.output["echo"] == {"ok": False, "error": {
        "code": "timeout", "message": "host op 'test.hang' took longer than its 100 ms limit"}}


def test_a_host_op_running_past_the_calls_deadline_is_a_timeout_fault(
        tmp_path: Path, backend: str) -> None:
    runtime = make_runtime(tmp_path, backend, HostOps([
        HostOp("test.hang", "clients.read", _hang, timeout_ms=5_000, blocking=True)]))
    plugin = runtime.load(guests.host_caller([{"op": "test.hang"}]), plugin_id="caller",
                          version="2.0.0", limits=Limits(timeout_ms=150),
                          grants=frozenset({"clients.read"}))
    with pytest.raises(PluginFault) as raised:
        plugin.call("go")
    assert raised.value.kind == FaultKind.TIMEOUT
    assert raised.value.message == "the call's deadline passed in host op 'test.hang'"


@pytest.mark.parametrize("kind", ["memory_limit", "trap"])
def test_abort_ends_the_call_with_the_kind_the_guest_names(host_runtime: Runtime, kind: str) -> None:
    with pytest.raises(PluginFault) as raised:
        run(host_runtime, [{"op": "abort", "args": {"kind": kind, "message": "cms_alloc(9000000)"}},
                           {"op": "test.echo"}], set())
    assert raised.value.kind == FaultKind(kind)
    assert raised.value.message == "plugin aborted: cms_alloc(9000000)"
    assert raised.value.stats is not None and raised.value.stats.host_calls == 1


def test_abort_with_an_unknown_kind_is_a_trap(host_runtime: Runtime) -> None:
    with pytest.raises(PluginFault) as raised:
        run(host_runtime, [{"op": "abort", "args": {"kind": "fuel_exhausted"}}], set())
    assert raised.value.kind == FaultKind.TRAP
    assert "'fuel_exhausted' is not one of memory_limit, trap" in raised.value.message


ALLOC_TRAPS_ON_SECOND_USE = """
  (global $allocs (mut i32) (i32.const 0))
  (func $alloc (export "cms_alloc") (param $n i32) (result i32)
    (local $p i32)
    (global.set $allocs (i32.add (global.get $allocs) (i32.const 1)))
    (if (i32.gt_u (global.get $allocs) (i32.const 1)) (then unreachable))
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $n)))
    (local.get $p))"""


ALLOC_FAILS_ON_SECOND_USE = ALLOC_TRAPS_ON_SECOND_USE.replace("(then unreachable)",
                                                              "(then (return (i32.const 0)))")


@pytest.mark.parametrize(("alloc", "kind", "message"), [
    # The guest traps while the host writes its answer: a trap.
    (ALLOC_TRAPS_ON_SECOND_USE, FaultKind.TRAP,
     re.escape("unreachable: wasm `unreachable` instruction executed")),
    # The guest's allocator is out of memory for the host's answer: memory_limit.
    (ALLOC_FAILS_ON_SECOND_USE, FaultKind.MEMORY_LIMIT,
     r"cms_alloc\(\d+\) returned 0 for a host answer"),
], ids=["trap", "alloc-returns-0"])
def test_an_allocator_failing_for_the_hosts_answer(host_runtime: Runtime, alloc: str,
                                                   kind: FaultKind, message: str) -> None:
    request = b'{"op":"test.echo","args":{}}'
    handle = f"""
  (func (export "cms_handle") (param i32 i32) (result i64)
    (call $call (i32.const 16) (i32.const {len(request)})))"""
    wasm = guests.module(handle=handle, alloc=alloc, data=request,
                         imports='(import "cms" "call" (func $call (param i32 i32) (result i64)))')
    plugin = host_runtime.load(wasm, plugin_id="p", version="1", grants=frozenset({"clients.read"}))
    with pytest.raises(PluginFault) as raised:
        plugin.call("go")
    assert raised.value.kind == kind
    assert re.fullmatch(message, raised.value.message), raised.value.message


@pytest.mark.parametrize("import_name", ["call", "log"])
def test_a_request_outside_linear_memory_is_invalid_output(host_runtime: Runtime,
                                                           import_name: str) -> None:
    args = "(i32.const 65530) (i32.const 100)"
    call = (f"(drop (call $f {args}))" if import_name == "call"
            else f"(call $f (i32.const 1) {args})")
    signature = ("(param i32 i32) (result i64)" if import_name == "call"
                 else "(param i32 i32 i32)")
    handle = f"""
  (func (export "cms_handle") (param i32 i32) (result i64)
    {call}
    (i64.const 0))"""
    wasm = guests.module(handle=handle,
                         imports=f'(import "cms" "{import_name}" (func $f {signature}))')
    plugin = host_runtime.load(wasm, plugin_id="p", version="1",
                               grants=frozenset({"clients.read", "log"}))
    with pytest.raises(PluginFault) as raised:
        plugin.call("go")
    assert raised.value.kind == FaultKind.INVALID_OUTPUT
    assert raised.value.message == f"cms.{import_name} pointer/length out of bounds"


def test_a_full_sandbox_pool_is_a_host_error_not_the_plugins(tmp_path: Path, backend: str) -> None:
    """With one slot, a plugin called from inside another call's host op finds no free slot."""
    from cms.runtime import EngineSettings

    inner_faults: list[PluginFault] = []
    holder: dict[str, Any] = {}

    def nested(call: CallContext, args: dict[str, Any]) -> Any:
        try:
            holder["inner"].call("go")
        except PluginFault as fault:
            inner_faults.append(fault)
        return "done"

    runtime = make_runtime(tmp_path, backend, HostOps([HostOp("test.nested", "log", nested)]),
                           engine=EngineSettings(pool_slots=1))
    holder["inner"] = runtime.load(guests.module(abi_version=None), plugin_id="inner", version="1")
    outer = runtime.load(guests.host_caller([{"op": "test.nested"}]), plugin_id="outer", version="1",
                         grants=frozenset({"log"}))
    assert outer.call("go").output["echo"] == {"ok": True, "result": "done"}
    [fault] = inner_faults
    assert fault.kind == FaultKind.HOST_ERROR
    assert fault.message.startswith("no free sandbox slot in this process")


def test_plugin_log_lines_are_rate_limited(host_runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    from cms.runtime.host import LOG_BURST

    caplog.set_level(logging.INFO, logger="cms.plugins")
    plugin = host_runtime.load(guests.host_caller([{"op": "nope"}], log_lines=50), plugin_id="chatty",
                               version="1", grants=frozenset({"log"}))
    for _ in range(4):  # 200 lines at once: the burst passes, the rest is dropped
        plugin.call("go")
    written = [r for r in caplog.records if r.name == "cms.plugins.chatty"]
    assert LOG_BURST <= len(written) < 200
