"""The Zig guest library (plugin_sdk/guest/zig/cms.zig) and the Zig template, compiled with the
SDK's pinned compiler and run in the real runtime with in-memory host ops.

Each module is compiled once per test module (compiling takes seconds); every call runs in a fresh
sandbox, so tests share the loaded plugins and reset only the host's state.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import wasmtime

from cms.runtime import (CallContext, HostOp, HostOpError, HostOps, Limits, Plugin, PluginFault, Runtime,
                         RuntimeConfig)
from cms.runtime.limits import MIB
from plugin_sdk import toolchain
from plugin_sdk.abi import FaultKind, MAX_OUTPUT_BYTES
from plugin_sdk.ui import check_blocks
from plugin_sdk.vectors import subset_mismatch
from tests.conftest import require

TEMPLATE = Path(toolchain.__file__).parent / "templates" / "zig"
TEMPLATE_VALUES = {"{{id}}": "hello-world", "{{name}}": "Hello World", "{{ident}}": "hello_world"}
VECTORS = json.loads((TEMPLATE / "tests" / "vectors.json.tmpl").read_text(encoding="utf-8")
                     .replace("{{name}}", TEMPLATE_VALUES["{{name}}"]))
AGENT = {"id": 7, "username": "demo.agent", "name": "Dana Agent", "agency_id": 1}
CONTEXT = {"agent": AGENT}
GRANTS = frozenset({"log", "kv"})


# The host: kv ops over an in-memory store, canned answers, and an op that echoes its args ---------

class Host:
    """Host state for one test: a kv store, canned answers per op, and the requests seen."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, canned: dict[str, Any] | None = None) -> None:
        self.kv: dict[tuple[str, str], Any] = {}
        self.canned = {op: list(a) if isinstance(a, list) else [a] for op, a in (canned or {}).items()}
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def answer(self, op: str, args: dict[str, Any]) -> Any:
        self.requests.append((op, args))
        answers = self.canned.get(op)
        if answers:
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            if not answer["ok"]:
                raise HostOpError(answer["error"]["code"], answer["error"].get("message", ""))
            return answer.get("result")
        key = (args.get("scope", "agent"), args.get("key", ""))
        if op == "kv.get":
            return {"value": self.kv.get(key)}
        if op == "kv.set":
            self.kv[key] = args["value"]
            return {"ok": True}
        if op == "kv.delete":
            return {"deleted": self.kv.pop(key, None) is not None}
        if op == "kv.list":
            scope = args.get("scope", "agent")
            return {"keys": sorted(k for s, k in self.kv if s == scope and k.startswith(args["prefix"]))}
        if op == "test.echo":
            return args
        raise AssertionError(f"unexpected op {op}")

    def ops(self) -> HostOps:
        def handler(op: str) -> Callable[[CallContext, dict[str, Any]], Any]:
            return lambda _call, args: self.answer(op, args)

        names = ["kv.get", "kv.set", "kv.delete", "kv.list", "test.echo"]
        return HostOps([HostOp(name, "kv", handler(name)) for name in names])


@pytest.fixture(scope="module")
def host() -> Host:
    return Host()


@pytest.fixture(autouse=True)
def _fresh_host(host: Host) -> None:
    host.reset()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, host: Host) -> Iterator[Runtime]:
    rt = Runtime(RuntimeConfig(artifact_dir=tmp_path_factory.mktemp("artifacts"),
                               compile_missing=True), host.ops())
    yield rt
    rt.close()


def compile_zig(folder: Path, source: str) -> bytes:
    require(toolchain.zig_available(), "ziglang (pip install 'cms[sdk]')")
    (folder / "main.zig").write_text(source, encoding="utf-8")
    return toolchain.compile_module("zig", folder / "main.zig", folder / "main.wasm")


# The template ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template instantiated as `cms-plugin new "Hello World"` would."""
    folder = tmp_path_factory.mktemp("template") / "hello-world"
    for source in sorted(p for p in TEMPLATE.rglob("*") if p.is_file()):
        target = folder / source.relative_to(TEMPLATE).with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text(encoding="utf-8")
        for key, value in TEMPLATE_VALUES.items():
            text = text.replace(key, value)
        target.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def template_wasm(template_dir: Path) -> bytes:
    require(toolchain.zig_available(), "ziglang (pip install 'cms[sdk]')")
    return toolchain.compile_module("zig", template_dir / "src" / "main.zig",
                                    template_dir / "dist" / "hello-world.wasm")


@pytest.fixture(scope="module")
def template(runtime: Runtime, template_wasm: bytes) -> Plugin:
    return runtime.load(template_wasm, plugin_id="hello-world", version="0.1.0", grants=GRANTS)


def test_template_files_are_all_there(template_dir: Path) -> None:
    files = sorted(str(p.relative_to(template_dir)) for p in template_dir.rglob("*") if p.is_file())
    assert files == [".gitignore", "README.md", "plugin.toml", "src/main.zig", "tests/vectors.json"]
    assert "{{" not in "".join(p.read_text() for p in template_dir.rglob("*") if p.is_file())
    manifest = (template_dir / "plugin.toml").read_text()
    assert 'lang = "zig"' in manifest and 'source = "src/main.zig"' in manifest
    assert (template_dir / ".gitignore").read_text().split() == ["dist/"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_template_vector(template: Plugin, host: Host, vector: dict[str, Any]) -> None:
    host.reset(vector.get("host"))
    output = template.call(vector["action"], vector.get("params", {}), vector.get("context", {})).output
    expect = vector["expect"]
    assert output["ok"] is expect["ok"], output
    if expect["ok"]:
        for key in ("result", "ui"):
            if key in expect:
                assert subset_mismatch(expect[key], output.get(key)) is None, output
    else:
        assert output["error"]["code"] == expect["error"], output


def test_template_ui_is_valid_and_bound_to_its_actions(template: Plugin, host: Host) -> None:
    widget = template.call("widget", {}, CONTEXT).output
    check_blocks(widget["ui"], actions={"widget", "greet"})
    assert widget["ui"] == [
        {"type": "heading", "text": "Hello World", "level": 2},
        {"type": "text", "text": "Greetings so far:", "tone": "neutral"},
        {"type": "badge", "text": "0", "tone": "info"},
        {"type": "form", "action": "greet",
         "fields": [{"name": "name", "label": "Name", "placeholder": "Ada", "required": True}],
         "buttons": [{"label": "Greet", "style": "primary"}]},
    ]
    host.reset({"kv.get": {"ok": False, "error": {"code": "timeout", "message": "slow"}}})
    check_blocks(template.call("widget", {}, CONTEXT).output["ui"], actions={"widget", "greet"})
    check_blocks(template.call("greet", {"name": "Ada"}, CONTEXT).output["ui"])


def test_template_counts_greetings_in_kv_and_logs_them(template: Plugin, host: Host,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cms.plugins"):
        counts = [template.call("greet", {"name": f"  {n} "}, CONTEXT).output["result"]
                  for n in ("Ada", "Grace", "Zoë")]
    assert counts == [{"greeting": "Hello, Ada!", "count": 1}, {"greeting": "Hello, Grace!", "count": 2},
                      {"greeting": "Hello, Zoë!", "count": 3}]
    assert host.kv == {("agent", "greetings"): 3}
    assert ("kv.set", {"key": "greetings", "value": 3, "scope": "agent"}) in host.requests
    lines = [r.getMessage() for r in caplog.records if r.name == "cms.plugins.hello-world"]
    assert lines == ["hello-world@0.1.0: greeted Ada (count 1)", "hello-world@0.1.0: greeted Grace (count 2)",
                     "hello-world@0.1.0: greeted Zoë (count 3)"]
    assert template.call("widget", {}, CONTEXT).output["ui"][2] == {"type": "badge", "text": "3", "tone": "info"}


def test_template_greets_when_kv_set_fails(template: Plugin, host: Host) -> None:
    host.reset({"kv.set": {"ok": False, "error": {"code": "unavailable", "message": "down"}}})
    output = template.call("greet", {"name": "Ada"}, CONTEXT).output
    assert output["result"] == {"greeting": "Hello, Ada!", "count": None}


def test_template_unknown_action_and_bad_input(template: Plugin) -> None:
    assert template.call("wave", {}, CONTEXT).output == {"ok": False, "error": {
        "code": "unknown_action", "message": 'this plugin has no action "wave" (it has widget, greet)'}}
    for raw in (b"not json", b'{"abi":1}', b'{"abi":1,"action":"greet","params":[]}', b"[1]",
                b'{"abi":1,"action":"greet","params":{}} trailing', b'{"abi":1,"action":7}'):
        error = template.call_raw(raw).output["error"]
        assert error["code"] == "bad_input", raw


def test_template_is_small_and_cheap(template: Plugin, template_wasm: bytes) -> None:
    """Guards against a library change that bloats every plugin (sizes are in the SDK notes)."""
    assert len(template_wasm) < 48 * 1024
    for action, params in (("widget", {}), ("greet", {"name": "Ada"})):
        stats = template.call(action, params, CONTEXT).stats
        assert stats.fuel_consumed < 200_000, (action, stats)
        assert stats.peak_memory_bytes <= 256 * 1024, (action, stats)


# A probe plugin that exercises the whole library -----------------------------------------------

PROBE = r'''
const std = @import("std");
const cms = @import("cms");

pub const actions = .{
    .echo = echo,         .read = read,     .who = who,           .blocks = blocks,
    .fails = fails,       .custom = custom, .oom = oom,           .oom_huge = oomHuge,
    .oom_error = oomError, .boom = boom,    .give_up = giveUp,    .kv = kv,
    .call = call,         .log = logLines,  .big = big,           .plain = plain,
};
pub const panic = cms.panic;

comptime {
    cms.plugin(@This());
}

fn echo(c: *cms.Context) !void {
    c.setResult(c.params);
}

fn read(c: *cms.Context) !void {
    c.setResult(.{
        .s = c.paramString("s", "default"),
        .i = c.paramInt("i", -1),
        .b = c.paramBool("b", false),
        .f = cms.asFloat(c.param("f"), -1),
        .missing = c.param("missing") == null,
    });
}

fn who(c: *cms.Context) !void {
    c.setResult(.{ .action = c.action, .agent = c.agent, .client = c.client, .slot = c.slot });
}

fn blocks(c: *cms.Context) !void {
    c.heading("Title", 1);
    c.heading("Clamped", 9);
    c.text("Plain <b>not html</b>", .neutral);
    c.alert("Careful", .danger);
    c.badge("3", .info);
    c.keyValue(&.{ .{ .key = "Name", .value = "Ada" }, .{ .key = "Städt", .value = "ß" } });
    c.table(&.{ "Name", "Count", "VIP", "Note" }, .{ .{ "Ada", 3, true, null }, .{ "Grace", -5, false, "x" } });
    c.list(&.{ "one", "two" }, true);
    c.form(.{
        .action = "echo",
        .title = "Edit",
        .fields = &.{
            .{ .name = "name", .label = "Name", .kind = .text, .value = .{ .string = "Ada" }, .placeholder = "Name", .required = true },
            .{ .name = "count", .label = "Count", .kind = .number, .value = .{ .integer = 3 } },
            .{ .name = "tier", .label = "Tier", .kind = .select, .options = &.{ .{ .value = "a", .label = "A" }, .{ .value = "b", .label = "B" } } },
            .{ .name = "vip", .label = "VIP", .kind = .checkbox, .value = .{ .bool = true } },
        },
        .buttons = &.{
            .{ .label = "Save", .style = .primary },
            .{ .label = "Delete", .action = "fails", .style = .danger, .value = "delete" },
        },
    });
    c.terminal(&.{ "$ ls", "a  b" });
    c.timeline(&.{
        .{ .time = "09:00", .title = "Called", .text = "No answer", .tone = .warning },
        .{ .time = "10:00", .title = "Booked" },
    });
    c.link("Call Ada", "tel:+441234567");
    c.block(.{ .type = "link", .text = "Client", .href = "/clients/12" });
    c.timer("On call", "2026-11-24T14:01:57Z");
    c.timer(null, "2026-11-24T14:01:57Z");
}

fn fails(c: *cms.Context) !void {
    if (std.mem.eql(u8, c.paramString("which", ""), "http")) return error.HTTPTimeout;
    return error.NoSuchClient;
}

fn custom(c: *cms.Context) !void {
    c.setError("custom_code", "A custom message");
    return error.Ignored;
}

fn oom(c: *cms.Context) !void {
    while (true) {
        const chunk = try c.allocator.alloc(u8, 64 * 1024);
        chunk[0] = 1;
    }
}

fn oomHuge(c: *cms.Context) !void {
    const chunk = try c.allocator.alloc(u8, 100 * 1024 * 1024);
    chunk[0] = 1;
}

fn oomError(_: *cms.Context) !void {
    return error.OutOfMemory;
}

fn boom(_: *cms.Context) !void {
    @panic("boom: \"quoted\" \\ Zoë\n");
}

fn giveUp(c: *cms.Context) !void {
    c.fail("gave up");
}

fn kv(c: *cms.Context) !void {
    const set = c.kvSet("k", .{ .n = 1, .s = "Zoë" }, .client);
    const got = c.kvGet("k", .client);
    const missing = c.kvGet("absent", .plugin);
    const keys = c.kvList("", .client);
    const deleted = c.kvDelete("k", .client);
    c.setResult(.{ .set = set, .got = got, .missing = missing, .keys = keys, .deleted = deleted });
}

fn call(c: *cms.Context) !void {
    c.setResult(.{
        .unknown = c.call("no.such.op", .{}),
        .empty = c.call("test.echo", .{}),
        .params = c.call("test.echo", c.params),
        .typed = c.call("test.echo", .{ .n = @as(i64, -3), .list = &[_][]const u8{ "a", "b" } }),
    });
}

fn logLines(c: *cms.Context) !void {
    c.log(.warn, "warned {d} {s}", .{ 42, "Zoë" });
    cms.log(.debug, "debug line", .{});
    const long = try c.allocator.alloc(u8, 5000);
    @memset(long, 'x');
    c.log(.err, "{s}", .{long});
}

fn big(c: *cms.Context) !void {
    const line = try c.allocator.alloc(u8, 3000);
    @memset(line, 'y');
    for (0..100) |_| c.text(line, .neutral);
}

fn plain(c: *cms.Context) void {
    c.setResult(c.fmt("{s}-{d}", .{ c.action, 7 }));
}
'''


@pytest.fixture(scope="module")
def probe_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return compile_zig(tmp_path_factory.mktemp("probe"), PROBE)


@pytest.fixture(scope="module")
def probe(runtime: Runtime, probe_wasm: bytes) -> Plugin:
    return runtime.load(probe_wasm, plugin_id="probe", version="1.0.0", grants=GRANTS)


@pytest.fixture(scope="module")
def small_probe(runtime: Runtime, probe_wasm: bytes) -> Plugin:
    """The probe with a 2 MiB memory limit."""
    return runtime.load(probe_wasm, plugin_id="probe", version="1.0.0", grants=GRANTS,
                        limits=Limits(memory_bytes=2 * MIB))


TRICKY = {
    "quotes": 'say "hi" \\ /slash/',
    "controls": "".join(chr(i) for i in range(32)) + "\x7f",
    "unicode": "Zoë Ådne ß 日本語 \u2028\u2029 🙂 \U0001f680",
    "empty": "",
    "numbers": [0, -1, 2**53, 2**63 - 1, -(2**63), 2**64, 1.5, -0.25, 1e300, 6.02e23],
    "nested": {"a": [[], {}, [{"b": None}]], "t": True, "f": False},
    "dup-free key ü": {"€": "€"},
}


def test_json_round_trip_of_tricky_values(probe: Plugin) -> None:
    assert probe.call("echo", TRICKY).output == {"ok": True, "result": TRICKY}


def test_json_escapes_in_the_input_are_decoded(probe: Plugin) -> None:
    raw = (rb'{"abi":1,"action":"echo","params":{"s":"\ud83d\ude00 \u00e9\n\t\"\\\/",'
           rb'"lone":"\ud800x","sp" : [ 1 , 2 ] },"context":{}}')
    assert probe.call_raw(raw).output["result"] == {"s": "😀 é\n\t\"\\/", "lone": "\ufffdx", "sp": [1, 2]}


def test_nesting_is_limited_instead_of_overflowing_the_stack(probe: Plugin) -> None:
    deep: Any = "bottom"
    for _ in range(60):
        deep = [deep]
    assert probe.call("echo", {"deep": deep}).output["result"] == {"deep": deep}
    for _ in range(200):
        deep = {"d": deep}
    assert probe.call("echo", {"deep": deep}).output["error"]["code"] == "bad_input"


def test_reading_params_with_defaults(probe: Plugin) -> None:
    def read(params: dict[str, Any]) -> Any:
        return probe.call("read", params).output["result"]

    assert read({}) == {"s": "default", "i": -1, "b": False, "f": -1, "missing": True}
    assert read({"s": "x", "i": 42, "b": True, "f": 2.5}) == {"s": "x", "i": 42, "b": True, "f": 2.5,
                                                              "missing": True}
    assert read({"s": 5, "i": "17", "b": "yes", "f": 3}) == {"s": "default", "i": 17, "b": False, "f": 3,
                                                             "missing": True}
    assert read({"i": 3.0})["i"] == 3
    assert read({"i": 3.5})["i"] == -1
    assert read({"i": 2**70})["i"] == -1


def test_context_gives_agent_client_and_slot(probe: Plugin) -> None:
    context = {"agent": AGENT, "client": {"id": 12, "name": "Ada Lovelace"}, "slot": "client.sidebar"}
    assert probe.call("who", {}, context).output["result"] == {
        "action": "who", "agent": AGENT, "client": {"id": 12, "name": "Ada Lovelace"},
        "slot": "client.sidebar"}
    assert probe.call("who", {}, {}).output["result"] == {"action": "who", "agent": None,
                                                          "client": None, "slot": None}


def test_every_ui_block_follows_the_schema(probe: Plugin) -> None:
    ui = probe.call("blocks").output["ui"]
    check_blocks(ui, actions=["echo", "fails"])
    assert [b["type"] for b in ui] == ["heading", "heading", "text", "alert", "badge", "key_value",
                                       "table", "list", "form", "terminal", "timeline", "link", "link",
                                       "timer", "timer"]
    assert ui[-2:] == [{"type": "timer", "label": "On call", "since": "2026-11-24T14:01:57Z"},
                       {"type": "timer", "since": "2026-11-24T14:01:57Z"}]
    assert ui[1] == {"type": "heading", "text": "Clamped", "level": 3}
    assert ui[6] == {"type": "table", "columns": ["Name", "Count", "VIP", "Note"],
                     "rows": [["Ada", 3, True, None], ["Grace", -5, False, "x"]]}
    assert ui[8] == {
        "type": "form", "action": "echo", "title": "Edit",
        "fields": [
            {"name": "name", "label": "Name", "kind": "text", "value": "Ada", "placeholder": "Name",
             "required": True},
            {"name": "count", "label": "Count", "kind": "number", "value": 3},
            {"name": "tier", "label": "Tier", "kind": "select",
             "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]},
            {"name": "vip", "label": "VIP", "kind": "checkbox", "value": True},
        ],
        "buttons": [{"label": "Save", "style": "primary"},
                    {"label": "Delete", "action": "fails", "style": "danger", "value": "delete"}],
    }
    assert ui[10]["items"] == [{"time": "09:00", "title": "Called", "text": "No answer", "tone": "warning"},
                               {"time": "10:00", "title": "Booked"}]


def test_zig_errors_become_snake_case_error_codes(probe: Plugin) -> None:
    assert probe.call("fails").output == {"ok": False, "error": {
        "code": "no_such_client", "message": "action fails failed: error.NoSuchClient"}}
    assert probe.call("fails", {"which": "http"}).output["error"]["code"] == "http_timeout"
    assert probe.call("custom").output == {"ok": False, "error": {"code": "custom_code",
                                                                  "message": "A custom message"}}


def test_an_action_may_return_plain_void(probe: Plugin) -> None:
    assert probe.call("plain").output == {"ok": True, "result": "plain-7"}


def test_running_out_of_memory_is_a_clean_memory_limit_abort(small_probe: Plugin) -> None:
    with pytest.raises(PluginFault) as caught:
        small_probe.call("oom")
    assert caught.value.kind == FaultKind.MEMORY_LIMIT
    assert caught.value.message == "plugin aborted: out of memory allocating 65536 bytes"


def test_one_huge_allocation_aborts_far_below_the_cap(small_probe: Plugin) -> None:
    """Memory is nowhere near the cap, so only the abort op (not the host's inference) says so."""
    with pytest.raises(PluginFault) as caught:
        small_probe.call("oom_huge")
    assert caught.value.kind == FaultKind.MEMORY_LIMIT
    assert caught.value.message == "plugin aborted: out of memory allocating 104857600 bytes"
    assert caught.value.stats is not None and caught.value.stats.peak_memory_bytes < MIB


def test_out_of_memory_returned_from_an_action_is_memory_limit(probe: Plugin) -> None:
    with pytest.raises(PluginFault) as caught:
        probe.call("oom_error")
    assert (caught.value.kind, caught.value.message) == (
        FaultKind.MEMORY_LIMIT, "plugin aborted: out of memory in action oom_error")


def test_a_panic_is_a_trap_with_its_message(probe: Plugin) -> None:
    with pytest.raises(PluginFault) as caught:
        probe.call("boom")
    assert caught.value.kind == FaultKind.TRAP
    assert caught.value.message == 'plugin aborted: boom: "quoted" \\ Zoë\n'
    with pytest.raises(PluginFault) as caught:
        probe.call("give_up")
    assert (caught.value.kind, caught.value.message) == (FaultKind.TRAP, "plugin aborted: gave up")


def test_kv_wrappers_send_scope_and_unwrap_results(probe: Plugin, host: Host) -> None:
    result = probe.call("kv").output["result"]
    assert result == {
        "set": {"ok": True, "result": {"ok": True}, "code": "", "message": ""},
        "got": {"ok": True, "result": {"n": 1, "s": "Zoë"}, "code": "", "message": ""},
        "missing": {"ok": True, "result": None, "code": "", "message": ""},
        "keys": {"ok": True, "result": ["k"], "code": "", "message": ""},
        "deleted": {"ok": True, "result": True, "code": "", "message": ""},
    }
    assert host.requests[:2] == [("kv.set", {"key": "k", "value": {"n": 1, "s": "Zoë"}, "scope": "client"}),
                                 ("kv.get", {"key": "k", "scope": "client"})]
    assert host.kv == {}


def test_an_unavailable_kv_is_an_answer_the_plugin_handles(probe: Plugin, host: Host) -> None:
    host.reset({op: {"ok": False, "error": {"code": "unavailable", "message": "kv is down"}}
                for op in ("kv.get", "kv.set", "kv.delete", "kv.list")})
    output = probe.call("kv").output
    assert output["ok"] is True
    assert output["result"]["got"] == {"ok": False, "result": None, "code": "unavailable",
                                       "message": "kv is down"}
    assert {answer["code"] for answer in output["result"].values()} == {"unavailable"}


def test_host_call_encodes_args_and_reads_error_answers(probe: Plugin) -> None:
    result = probe.call("call", {"x": [1, "ü"]}).output["result"]
    assert result["unknown"] == {"ok": False, "result": None, "code": "unknown_op",
                                 "message": "no host op 'no.such.op'"}
    assert result["empty"]["result"] == {}
    assert result["params"]["result"] == {"x": [1, "ü"]}
    assert result["typed"]["result"] == {"n": -3, "list": ["a", "b"]}


def test_log_levels_and_long_lines(probe: Plugin, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="cms.plugins"):
        probe.call("log")
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "cms.plugins.probe"]
    assert records[:2] == [("WARNING", "probe@1.0.0: warned 42 Zoë"), ("DEBUG", "probe@1.0.0: debug line")]
    assert records[2] == ("ERROR", "probe@1.0.0: " + "x" * 2048)


def test_log_without_the_capability_is_denied(runtime: Runtime, probe_wasm: bytes) -> None:
    plugin = runtime.load(probe_wasm, plugin_id="probe", version="1.0.0", grants=frozenset({"kv"}))
    with pytest.raises(PluginFault) as caught:
        plugin.call("log")
    assert caught.value.kind == FaultKind.CAPABILITY_DENIED


def test_output_over_the_abi_limit_is_an_error_answer(probe: Plugin) -> None:
    assert probe.call("big").output["error"]["code"] == "output_too_large"
    assert 100 * 3000 > MAX_OUTPUT_BYTES


def test_cms_alloc_returns_zero_when_memory_cannot_grow(probe_wasm: bytes) -> None:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=2 * MIB)
    linker = wasmtime.Linker(engine)
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    linker.define_func("cms", "log", wasmtime.FuncType([i32, i32, i32], []), lambda *a: None)
    linker.define_func("cms", "call", wasmtime.FuncType([i32, i32], [i64]), lambda *a: 0)
    exports = linker.instantiate(store, wasmtime.Module(engine, probe_wasm)).exports(store)
    alloc = exports["cms_alloc"]
    assert exports["cms_abi_version"](store) == 1  # type: ignore[operator]
    first = alloc(store, 10)  # type: ignore[operator]
    second = alloc(store, 3)  # type: ignore[operator]
    assert first > 0 and first % 8 == 0 and second >= first + 10 and second % 8 == 0
    assert alloc(store, 4 * MIB) == 0  # type: ignore[operator]
    assert alloc(store, 0x7FFFFFFF) == 0  # type: ignore[operator]
    assert alloc(store, 100) > second  # type: ignore[operator]


def test_a_plugin_without_a_panic_handler_does_not_compile(tmp_path: Path) -> None:
    source = 'const cms = @import("cms");\npub const actions = .{};\ncomptime { cms.plugin(@This()); }\n'
    with pytest.raises(toolchain.ToolchainError, match=r"pub const panic = cms\.panic"):
        compile_zig(tmp_path, source)
