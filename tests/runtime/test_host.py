"""Host functions: capability gates, the per-call budget, handler failures and timeouts."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from cms.runtime import CallContext, HostOp, HostOpError, HostOps, PluginFault, Runtime
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


def test_a_raising_host_function_is_a_host_error(host_runtime: Runtime) -> None:
    with pytest.raises(PluginFault) as raised:
        run(host_runtime, [{"op": "test.boom"}], {"clients.read"})
    assert raised.value.kind == FaultKind.HOST_ERROR
    assert raised.value.message == "host op 'test.boom' failed: RuntimeError"


def test_an_expected_op_error_is_an_answer_not_a_fault(host_runtime: Runtime) -> None:
    result = run(host_runtime, [{"op": "test.refuse"}], {"clients.read"})
    assert result.output["echo"] == {"ok": False, "error": {"code": "not_found",
                                                             "message": "No such client"}}


def test_unknown_ops_and_bad_requests_are_answers(host_runtime: Runtime) -> None:
    result = run(host_runtime, [{"op": "nope"}], set())
    assert result.output["echo"]["error"]["code"] == "unknown_op"
    result = run(host_runtime, [{"args": {}}], set())
    assert result.output["echo"]["error"]["code"] == "bad_request"


def test_a_hanging_host_function_times_out(host_runtime: Runtime) -> None:
    with pytest.raises(PluginFault) as raised:
        run(host_runtime, [{"op": "test.hang"}], {"clients.read"})
    assert raised.value.kind == FaultKind.HOST_ERROR
    assert "timed out after 100 ms" in raised.value.message
