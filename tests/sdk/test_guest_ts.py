"""The AssemblyScript guest library (plugin_sdk/guest/assemblyscript/cms) in the real runtime: the
TypeScript template through the CLI, and a probe plugin that exercises the library's UTF-8 and
JSON, UI, host-call and failure paths. Each module is compiled once for this file; the pinned
compiler is installed from npm once per test session."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import struct
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest
import wasmtime

from cms.runtime import Limits, Plugin, PluginFault, Runtime, RuntimeConfig
from plugin_sdk import abi, toolchain_ts
from plugin_sdk.cli import main
from plugin_sdk.project import ops_named_in
from plugin_sdk.toolchain import ToolchainError, compile_module
from plugin_sdk.ui import check_blocks
from tests.conftest import require
from tests.sdk.factories import GuestHost as Host

AGENT = {"agent": {"id": 7, "username": "demo.agent", "name": "Dana Agent", "agency_id": 1}}

PROBE = r'''
import { Action, Button, Ctx, DEBUG, Field, INFO, JsonValue, JsonWriter, Option, WARN, handle,
         parse } from "cms";
export { cms_alloc, cms_abi_version } from "cms";

function echo(ctx: Ctx): void { ctx.result().value(ctx.params); }

function parseText(ctx: Ctx): void {
  const v = parse(ctx.param("text").asString(""));
  const r = ctx.result().obj().kbool("valid", v !== null);
  if (v !== null) r.kvalue("value", v);
  else r.knull("value");
  r.end();
}

function access(ctx: Ctx): void {
  const p = ctx.params, arr = p.get("arr");
  const r = ctx.result().obj()
    .kstr("str_of_num", p.get("num").asString("default"))
    .kint("int_of_str", p.get("str").asInt(-1))
    .kint("int_of_int", p.get("num").asInt(-1))
    .kint("int_of_big", p.get("big").asInt(-1))
    .kint("int_of_whole", p.get("whole").asInt(-1))
    .kint("int_of_frac", p.get("frac").asInt(-1))
    .knum("num_of_int", p.get("num").asNumber(-1))
    .knum("num_of_str", p.get("str").asNumber(-1))
    .kbool("bool", p.get("flag").asBool(false))
    .kbool("bool_of_null", p.get("nothing").asBool(true))
    .kint("len_arr", arr.length)
    .kint("len_str", p.get("str").length)
    .kint("len_emoji", p.get("emoji").length)
    .kint("len_num", p.get("num").length)
    .kvalue("at_1", arr.at(1))
    .kbool("at_out_of_range", !arr.at(99).exists)
    .kbool("at_on_object", !p.at(0).exists)
    .kbool("get_on_array", !arr.get("x").exists)
    .kbool("null_is_null", p.get("nothing").isNull)
    .kbool("missing_is_null", p.get("missing").isNull)
    .kbool("str_is_null", p.get("str").isNull)
    .kstr("nested", p.get("obj").get("inner").get("name").asString("?"))
    .kstr("missing_chain", p.get("no").get("such").get("thing").asString("?"))
    .kstr("agent", ctx.context.get("agent").get("name").asString("?"))
    .kstr("action", ctx.action)
    .kstr("stringify", p.get("obj").stringify())
    .kobj("types");
  const members = p.children;
  for (let i = 0; i < members.length; i++) r.kint(members[i].key, <i64>members[i].kind);
  r.end().end();
}

function ui(ctx: Ctx): void {
  const u = ctx.ui;
  u.heading("Title \"quoted\"", 1);
  u.heading("No level");
  u.text("Plain <b>not html</b>");
  u.text("Toned", "info");
  u.keyValue();
  u.pair("Name", "Ada");
  u.pair("Line\nbreak", "Tab\there");
  u.table(["Name", "Count", "Ratio", "Active", "Note"]);
  u.row();
  u.cell("Ada"); u.cellInt(3); u.cellNum(0.25); u.cellBool(true); u.cellNull();
  u.row();
  u.cell("Zoë 😀"); u.cellInt(-1); u.cellNum(1e-3); u.cellBool(false); u.cellNull();
  u.table(["Empty"]);
  u.list();
  u.item("one");
  u.item("two");
  u.list(true);
  u.item("first");
  u.form("save", "Edit client");
  u.field(new Field("name").withLabel("Name").withValue("Ada").withRequired());
  u.field(new Field("age").withLabel("Age").withKind("number").withValueJson("36"));
  u.field(new Field("tier").withLabel("Tier").withKind("select")
    .withOptions([new Option("gold", "Gold"), new Option("silver")]));
  u.field(new Field("vip").withKind("checkbox").withValueJson("true"));
  u.button(new Button("Save").withStyle("primary"));
  u.button(new Button("Delete").withAction("remove").withStyle("danger").withValue("7"));
  u.form("save");
  u.form("remove");
  u.button(new Button("Only a button"));
  u.alert("Saved", "success");
  u.badge("VIP", "warning");
  u.terminal();
  u.line("$ ls");
  u.line("\x1b[31mred\x1b[0m");
  u.timeline();
  u.event("09:00", "Called", "Left a message", "info");
  u.event("10:00", "Booked");
  u.link("Call", "tel:+441234567");
  u.link("Client", "/clients/12");
  u.timer("2026-11-24T14:01:57Z", "On call");
  u.timer("2026-11-24T14:01:57Z");
  u.blockJson("{\"type\":\"badge\",\"text\":\"raw\"}");
  u.keyValue();
  u.end();
}

function fail(ctx: Ctx): void { ctx.fail(ctx.param("message").asString("failed")); }
function raise(ctx: Ctx): void { throw new Error(ctx.param("message").asString("thrown")); }
function outOfRange(ctx: Ctx): void {
  const items: i32[] = [1, 2];
  ctx.result().int(items[<i32>ctx.param("i").asInt(5)]);
}

function error(ctx: Ctx): void {
  ctx.ui.text("dropped");
  ctx.resultJson("{\"dropped\":true}");
  ctx.error(ctx.param("code").asString("x"), ctx.param("message").asString("y"));
}

function call(ctx: Ctx): void {
  const args = ctx.param("args");
  const a = ctx.call(ctx.param("op").asString(""), args.exists ? args.stringify() : null);
  ctx.result().obj().kbool("ok", a.ok).kbool("transient", a.transient).kstrOrNull("error", a.code)
    .kstr("message", a.message)
    .kstrOrNull("host_error", ctx.hostError).kvalue("result", a.result).end();
}

function kv(ctx: Ctx): void {
  const r = ctx.result().obj()
    .kbool("set", ctx.kvSet("a", "plugin", "{\"x\":[1,\"two\"]}"))
    .kbool("set_default_scope", ctx.kvSet("b", null, "2"));
  const got = ctx.kvGet("a", "plugin");
  r.key("get"); if (got !== null) r.value(got); else r.null();
  const other = ctx.kvGet("a", "client");
  r.kbool("other_scope_unset", other !== null && other.isNull);
  const byDefault = ctx.kvGet("b");
  r.kint("default_scope", byDefault !== null ? byDefault.asInt(-1) : -1);
  const keys = ctx.kvList("", "plugin");
  r.key("list"); if (keys !== null) r.value(keys); else r.null();
  r.kbool("delete", ctx.kvDelete("a", "plugin"));
  const gone = ctx.kvGet("a", "plugin");
  r.kbool("gone", gone !== null && gone.isNull);
  r.kstrOrNull("host_error", ctx.hostError).end();
}

function logLines(ctx: Ctx): void {
  ctx.log(DEBUG, "debug line");
  ctx.warn("warning line");
  ctx.log(INFO, `${5} apples for ${ctx.param("who").asString("?")}`);
}

function deep(ctx: Ctx): void {
  const r = ctx.result();
  for (let i = 0; i < 65; i++) r.arr();
}

function misuse(ctx: Ctx): void {
  ctx.ui.heading("x");
  ctx.ui.pair("no", "key_value block");
}

function surrogates(ctx: Ctx): void {
  const lone = String.fromCharCode(0xD800) + "x" + String.fromCharCode(0xDC00);
  ctx.result().obj().kstr("lone", lone).kstr(String.fromCharCode(0xDBFF), "key").end();
}

function hog(ctx: Ctx): void {
  const chunk = <i32>ctx.param("chunk").asInt(65536);
  const kept: ArrayBuffer[] = [];
  while (true) kept.push(new ArrayBuffer(chunk));
}

function noop(ctx: Ctx): void {}

export function cms_handle(ptr: usize, len: usize): u64 {
  return handle(ptr, len, [
    new Action("echo", echo), new Action("parse", parseText), new Action("access", access),
    new Action("ui", ui), new Action("fail", fail), new Action("raise", raise),
    new Action("out_of_range", outOfRange), new Action("error", error), new Action("call", call),
    new Action("kv", kv), new Action("log", logLines), new Action("deep", deep),
    new Action("misuse", misuse), new Action("surrogates", surrogates), new Action("hog", hog),
    new Action("noop", noop)]);
}
'''


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """XDG cache and config homes for this module: the compiler is installed there once per
    session (the CLI tests use the same cache)."""
    require(shutil.which("node") is not None and shutil.which("npm") is not None, "Node.js and npm")
    home = tmp_path_factory.getbasetemp() / "home"
    saved = {name: os.environ.get(name) for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    os.environ["XDG_CONFIG_HOME"] = str(home / "config-ts")
    yield home
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def made(homes: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cms-plugin new "Hello World" --lang ts`, built once (reproducibly) for the module."""
    parent = tmp_path_factory.mktemp("authors-ts")
    assert main(["new", "Hello World", "--lang", "ts", "--dir", str(parent)]) == 0
    folder = parent / "hello-world"
    assert main(["build", str(folder), "--check-reproducible"]) == 0
    return folder


@pytest.fixture(scope="module")
def probe(homes: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("probe-ts")
    (root / "assembly").mkdir()
    (root / "assembly" / "index.ts").write_text(PROBE, encoding="utf-8")
    return compile_module("ts", root / "assembly" / "index.ts", root / "probe.wasm", root)


@pytest.fixture(scope="module")
def _runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Host]]:
    shared = Host()
    runtime = Runtime(RuntimeConfig(artifact_dir=tmp_path_factory.mktemp("artifacts-ts"),
                                    compile_missing=True), shared.ops())
    yield runtime, shared
    runtime.close()


@pytest.fixture
def host(_runtime: tuple[Runtime, Host]) -> Host:
    shared = _runtime[1]
    shared.kv.clear()
    shared.kv_down = False
    return shared


@pytest.fixture
def load(probe: bytes, host: Host, _runtime: tuple[Runtime, Host]) -> Any:
    """load(grants=..., limits=...) -> the probe Plugin, with `host`'s ops."""
    def loader(grants: Iterable[str] = ("log", "kv", "test"), limits: Limits | None = None) -> Plugin:
        return _runtime[0].load(probe, plugin_id="probe", version="0.1.0", grants=frozenset(grants),
                                limits=limits)
    return loader


def raw(plugin: Plugin, envelope: Any) -> dict[str, Any]:
    """Call with an input encoded by json.dumps (ASCII only: every non-ASCII character escaped)."""
    data = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
    return plugin.call_raw(data).output


# The template through the CLI -----------------------------------------------------------------

def test_template_builds_checks_and_tests_with_chaos(made: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sorted(p.name for p in made.iterdir()) == ["README.md", "assembly", "dist", "plugin.toml", "tests"]
    assert main(["check", str(made / "dist"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["facts"]["ops"] == ["kv.get", "kv.set"]
    assert report["facts"]["imports"] == ["cms.call", "cms.log"]
    assert report["facts"]["exports"] == ["cms_abi_version", "cms_alloc", "cms_handle", "memory"]
    assert main(["test", str(made), "--chaos", "--json"]) == 0
    tested = json.loads(capsys.readouterr().out)
    assert tested["ok"] is True and tested["failures"] == [], tested["failures"]
    assert len(tested["vectors"]) == 7 and all(v["passed"] for v in tested["vectors"])
    assert len(tested["chaos"]) == 14 and all(c["passed"] for c in tested["chaos"])
    assert {s["action"] for s in tested["soak"]} == {"widget", "greet"}
    assert all(s["problem"] is None and s["memory_growth"] == 1.0 for s in tested["soak"]), tested["soak"]


def test_template_packages(made: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["keygen", "--dir", str(tmp_path / "keys"), "--json"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert main(["package", str(made), "--key", keys["private_key"], "--json"]) == 0
    package = Path(json.loads(capsys.readouterr().out)["package"])
    assert package.name == "hello-world-0.1.0.cmsplugin"
    assert main(["check", str(package), "--trusted-key", keys["public_key"]]) == 0


def test_template_answers_like_the_c_template(made: Path, load: Any, host: Host,
                                              _runtime: tuple[Runtime, Host]) -> None:
    plugin = _runtime[0].load((made / "dist" / "hello-world.wasm").read_bytes(),
                              plugin_id="hello-world", version="0.1.0", grants=frozenset({"log", "kv"}))
    first = plugin.call("greet", {"name": "  Ada  "}, AGENT).output
    assert first == {"ok": True, "result": {"greeting": "Hello, Ada!", "count": 1},
                     "ui": [{"type": "alert", "text": "Hello, Ada!", "tone": "success"}]}
    assert plugin.call("greet", {"name": "Zoë 😀"}, AGENT).output["result"] == {
        "greeting": "Hello, Zoë 😀!", "count": 2}
    assert host.kv == {("agent", "greetings"): 2}
    widget = plugin.call("widget", {}, AGENT).output
    assert widget["ui"] == [
        {"type": "heading", "text": "Hello World", "level": 2},
        {"type": "text", "text": "Greetings so far:", "tone": "neutral"},
        {"type": "badge", "text": "2", "tone": "info"},
        {"type": "form", "action": "greet",
         "fields": [{"name": "name", "label": "Name", "placeholder": "Ada", "required": True}],
         "buttons": [{"label": "Greet", "style": "primary"}]}]
    host.kv_down = True
    assert plugin.call("greet", {"name": "Ada"}, AGENT).output["result"] == {
        "greeting": "Hello, Ada!", "count": None}


def test_builds_are_reproducible_and_carry_no_paths(made: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "else" / "hello-world"
    shutil.copytree(made, elsewhere, ignore=shutil.ignore_patterns("dist"))
    again = compile_module("ts", elsewhere / "assembly" / "index.ts", tmp_path / "again.wasm", elsewhere)
    built = (made / "dist" / "hello-world.wasm").read_bytes()
    assert again == built
    for path in (str(made), str(tmp_path), str(toolchain_ts.GUEST_DIR), "node_modules"):
        assert path.encode() not in built and path.encode("utf-16-le") not in built, path


def test_the_probe_imports_and_exports_only_the_abi(probe: bytes) -> None:
    module = wasmtime.Module(wasmtime.Engine(), probe)
    assert sorted(f"{i.module}.{i.name}" for i in module.imports) == ["cms.call", "cms.log"]
    assert sorted(e.name for e in module.exports) == ["cms_abi_version", "cms_alloc", "cms_handle",
                                                      "memory"]
    # The probe names every kv op, as UTF-16 string literals.
    assert ops_named_in(probe) == {"kv.get", "kv.set", "kv.delete", "kv.list"}


def test_ops_named_in_reads_utf16_names_whole() -> None:
    assert ops_named_in(b"\x00" + " kv.get".encode("utf-16-le") + b"\x00\x00") == {"kv.get"}
    assert ops_named_in("xkv.get kv.getx akv.set".encode("utf-16-le")) == set()
    assert ops_named_in("kv.list".encode("utf-16-le") + b"kv.set") == {"kv.list", "kv.set"}


def test_a_missing_node_is_one_line_and_exit_2(made: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    assert main(["build", str(made), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "cms-plugin: Node.js 18+ is needed for TypeScript plugins: "
                              "apt-get install nodejs npm\n")


def test_a_failing_npm_install_is_one_line(homes: Path, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    # A registry that cannot be reached: npm fails, and the message says why in one line.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    with pytest.raises(ToolchainError) as failed:
        toolchain_ts.ensure_compiler()
    message = str(failed.value)
    assert message.startswith(f"npm install assemblyscript@{toolchain_ts.ASC_VERSION} failed: ")
    assert "\n" not in message and "ECONNREFUSED" in message, message
    assert not toolchain_ts.compiler_home().exists()
    assert [p.name for p in (tmp_path / "cache" / "cms-plugin").iterdir()] == [
        f"assemblyscript-{toolchain_ts.ASC_VERSION}.lock"]


def test_a_parallel_first_build_waits_for_the_install(made: Path, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    import fcntl
    import threading

    installed = toolchain_ts.compiler_home()  # the session's install, done by `made`
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # npm would fail here
    home = toolchain_ts.compiler_home()
    home.parent.mkdir(parents=True)
    found: list[Any] = []
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build is installing
        waiter = threading.Thread(target=lambda: found.append(toolchain_ts.ensure_compiler()))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive() and not found  # it waits for the lock
        home.mkdir()
        (home / "node_modules").symlink_to(installed / "node_modules")
    waiter.join(30)
    assert found == [home / "node_modules" / "assemblyscript" / "dist" / "asc.js"]


# Envelopes ------------------------------------------------------------------------------------

def test_unknown_action_and_bad_input(load: Any) -> None:
    plugin = load()
    assert plugin.call('no "such" action').output == {"ok": False, "error": {
        "code": "unknown_action", "message": 'this plugin has no action "no "such" action"'}}
    for data in (b"not json", b"", b"[]", b'{"abi":2,"action":"echo"}', b'{"abi":1,"action":""}',
                 b'{"abi":1,"action":7}', b'{"abi":1,"action":"echo","params":[]}',
                 b'{"abi":1,"action":"echo"} trailing', b'{"abi":1,"action":"\xff"}'):
        assert plugin.call_raw(data).output["error"]["code"] == "bad_input", data
    assert raw(plugin, {"abi": 1, "action": "echo"}) == {"ok": True, "result": {}}
    assert raw(plugin, {"abi": 1, "action": "noop"}) == {"ok": True}


def test_error_answer_replaces_result_and_ui(load: Any) -> None:
    message = 'Bad "name"\n\tline \\ two \x01 — ✓ 😀'
    output = load().call("error", {"code": "bad_name", "message": message}).output
    assert output == {"ok": False, "error": {"code": "bad_name", "message": message}}


# JSON and UTF-8 -------------------------------------------------------------------------------

TRICKY_STRINGS = [
    "", "plain", 'quote " and backslash \\ and slash /', "\b\f\n\r\t", "".join(map(chr, range(32))),
    "\x7f", "é", "Zoë", "日本語", "😀", "a😀b🎉c", "\U0010ffff", "\U00010000", "\u2028\u2029", "\ufeff",
    "\ufffd", "\u0000 after nul", "<script>alert(1)</script>", "mixed \u00e9\u20ac\U0001f600\n\"", "x" * 5000,
]
NUMBERS = [0, 1, -1, 42, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, -(2**63), 10**19, 2**64,
           0.1, -2.5, 0.30000000000000004, 3.141592653589793, 1e300, -1e-300, 5e-324,
           2.2250738585072014e-308, 1.7976931348623157e308, 123456.789, 1e-7, 1e21, 1.5e17,
           6.02214076e23, 0.5, 1e16, 9007199254740993.0]


def test_strings_round_trip_escaped_and_raw(load: Any) -> None:
    plugin = load()
    params = {"strings": TRICKY_STRINGS, "keys": {s: i for i, s in enumerate(TRICKY_STRINGS[:19])}}
    # Once with every non-ASCII character as \u escapes (surrogate pairs included), once raw UTF-8.
    assert raw(plugin, {"abi": 1, "action": "echo", "params": params})["result"] == params
    assert plugin.call("echo", params).output["result"] == params


def test_numbers_and_structures_round_trip(load: Any) -> None:
    params = {"numbers": NUMBERS, "nested": {"a": [[], {}, [[[{"b": None}]]]], "t": True, "f": False},
              "empty": {}, "list": [None, True, False, "", 0, -0.0, [1, [2, [3]]]]}
    result = load().call("echo", params).output["result"]
    assert result == params
    for sent, got in zip(NUMBERS, result["numbers"]):
        # Integers stay integers within 64 bits (beyond, they become doubles).
        assert type(got) is type(sent) or abs(sent) >= 2**63 or float(sent).is_integer(), (sent, got)


def test_random_doubles_round_trip_exactly(load: Any) -> None:
    rng = random.Random(7)
    values = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(1500)]
    values = [v for v in values if math.isfinite(v)]
    plugin = load()
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        assert plugin.call("echo", {"n": chunk}).output["result"]["n"] == chunk


@pytest.mark.parametrize("text", [
    "2.2250738585072011e-308", "2.2250738585072012e-308", "4.9406564584124654e-324",
    "2.4703282292062328e-324",
    "1.00000000000000011102230246251565404236316680908203125",  # a tie: to even (1.0)
    "1.00000000000000011102230246251565404236316680908203126", "9007199254740993.0",
    "1.7976931348623158e308", "1.7976931348623159e308", "3.0170681842882087e46", "0." + "0" * 400 + "1e400",
    "123456789012345678901234567890e-40", "1" * 1000 + "e-1000", "7.038531e-26", "1e23", "8.5e-323",
])
def test_decimals_are_read_as_the_nearest_double(load: Any, text: str) -> None:
    expected = float(text)
    got = load().call("parse", {"text": f"[{text}]"}).output["result"]["value"][0]
    assert got == (expected if math.isfinite(expected) else None)


def test_escapes_and_surrogates_decode_to_utf8(load: Any) -> None:
    data = (b'{"abi":1,"action":"echo","params":{"s":"\\ud83d\\ude00 \\u00e9\\u20AC \\/ \\u0041",'
            b'"lone":"\\ud800 x \\udc00 \\ud800\\u0041","raw":"\xf0\x9f\x98\x80"}}')
    assert load().call_raw(data).output["result"] == {
        "s": "😀 é€ / A", "lone": "\ufffd x \ufffd \ufffdA", "raw": "😀"}


def test_lone_surrogates_in_strings_are_written_as_replacement_characters(load: Any) -> None:
    assert load().call("surrogates").output["result"] == {"lone": "\ufffdx\ufffd", "\ufffd": "key"}


def test_invalid_utf8_is_bad_input(load: Any) -> None:
    # Bad bytes, overlong, surrogate, above U+10FFFF, cut short.
    for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"):
        data = b'{"abi":1,"action":"echo","params":{"s":"' + bad + b'"}}'
        assert load().call_raw(data).output["error"]["code"] == "bad_input", bad


@pytest.mark.parametrize(("text", "value"), [
    ('{"a": [1, 2.5, "x", true, false, null]}', {"a": [1, 2.5, "x", True, False, None]}),
    (' \n\t[ ] ', []), ('"\\ud83d\\ude00"', "😀"), ("-0", 0), ("1E+2", 100.0), ("1e-2", 0.01),
    ("[" * 32 + "]" * 32, json.loads("[" * 32 + "]" * 32)),
])
def test_parse_accepts_json(load: Any, text: str, value: Any) -> None:
    assert load().call("parse", {"text": text}).output["result"] == {"valid": True, "value": value}


@pytest.mark.parametrize("text", [
    "", " ", "{", "[1,]", "[1 2]", '{"a" 1}', '{"a":1,}', "{a:1}", "01", "1.", ".5", "-", "1e",
    "+1", "tru", "nul", "NaN", "Infinity", '"\\x"', '"\\u12"', '"\\u12G4"', '"a\u0001b"', '"open',
    "[1] x", "[" * 33 + "]" * 33, "'single'", "\u00a0[]",
])
def test_parse_rejects_what_is_not_json(load: Any, text: str) -> None:
    assert load().call("parse", {"text": text}).output["result"] == {"valid": False, "value": None}


def test_accessors_give_defaults_on_type_mismatch(load: Any) -> None:
    params = {"num": 42, "str": "text", "big": 2**63 - 1, "whole": 2.0, "frac": 2.5, "flag": True,
              "nothing": None, "arr": [10, "twenty", None], "obj": {"inner": {"name": "deep"}},
              "emoji": "😀"}
    result = load().call("access", params, AGENT).output["result"]
    assert result == {
        "str_of_num": "default", "int_of_str": -1, "int_of_int": 42, "int_of_big": 2**63 - 1,
        "int_of_whole": 2, "int_of_frac": -1, "num_of_int": 42, "num_of_str": -1, "bool": True,
        "bool_of_null": True, "len_arr": 3, "len_str": 4, "len_emoji": 2, "len_num": 0,
        "at_1": "twenty", "at_out_of_range": True, "at_on_object": True, "get_on_array": True,
        "null_is_null": True, "missing_is_null": True, "str_is_null": False, "nested": "deep",
        "missing_chain": "?", "agent": "Dana Agent", "action": "access",
        "stringify": '{"inner":{"name":"deep"}}',
        "types": {"num": 3, "str": 4, "big": 3, "whole": 3, "frac": 3, "flag": 2, "nothing": 1,
                  "arr": 5, "obj": 6, "emoji": 4},
    }


# UI -------------------------------------------------------------------------------------------

def test_every_ui_block_follows_the_schema(load: Any) -> None:
    ui = load().call("ui").output["ui"]
    check_blocks(ui, ["save", "remove"])
    assert ui == [
        {"type": "heading", "text": 'Title "quoted"', "level": 1},
        {"type": "heading", "text": "No level"},
        {"type": "text", "text": "Plain <b>not html</b>"},
        {"type": "text", "text": "Toned", "tone": "info"},
        {"type": "key_value", "items": [{"key": "Name", "value": "Ada"},
                                        {"key": "Line\nbreak", "value": "Tab\there"}]},
        {"type": "table", "columns": ["Name", "Count", "Ratio", "Active", "Note"],
         "rows": [["Ada", 3, 0.25, True, None], ["Zoë 😀", -1, 0.001, False, None]]},
        {"type": "table", "columns": ["Empty"], "rows": []},
        {"type": "list", "items": ["one", "two"]},
        {"type": "list", "ordered": True, "items": ["first"]},
        {"type": "form", "action": "save", "title": "Edit client",
         "fields": [{"name": "name", "label": "Name", "value": "Ada", "required": True},
                    {"name": "age", "label": "Age", "kind": "number", "value": 36},
                    {"name": "tier", "label": "Tier", "kind": "select",
                     "options": [{"value": "gold", "label": "Gold"},
                                 {"value": "silver", "label": "silver"}]},
                    {"name": "vip", "label": "vip", "kind": "checkbox", "value": True}],
         "buttons": [{"label": "Save", "style": "primary"},
                     {"label": "Delete", "action": "remove", "style": "danger", "value": "7"}]},
        {"type": "form", "action": "save"},
        {"type": "form", "action": "remove", "buttons": [{"label": "Only a button"}]},
        {"type": "alert", "text": "Saved", "tone": "success"},
        {"type": "badge", "text": "VIP", "tone": "warning"},
        {"type": "terminal", "lines": ["$ ls", "\x1b[31mred\x1b[0m"]},
        {"type": "timeline", "items": [{"time": "09:00", "title": "Called", "text": "Left a message",
                                        "tone": "info"},
                                       {"time": "10:00", "title": "Booked"}]},
        {"type": "link", "text": "Call", "href": "tel:+441234567"},
        {"type": "link", "text": "Client", "href": "/clients/12"},
        {"type": "timer", "label": "On call", "since": "2026-11-24T14:01:57Z"},
        {"type": "timer", "since": "2026-11-24T14:01:57Z"},
        {"type": "badge", "text": "raw"},
        {"type": "key_value", "items": []},
    ]


def test_ui_misuse_and_runaway_nesting_are_traps(load: Any) -> None:
    with pytest.raises(PluginFault) as misuse:
        load().call("misuse")
    assert (misuse.value.kind, misuse.value.message) == (
        "trap", "plugin aborted: ui.pair outside ui.keyValue")
    with pytest.raises(PluginFault) as deep:
        load().call("deep")
    assert deep.value.message == "plugin aborted: JSON writer: nested deeper than 64"


# Failing cleanly ------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["fail", "raise"])
def test_fail_and_throw_are_traps_with_the_message(load: Any, action: str) -> None:
    with pytest.raises(PluginFault) as fault:
        load().call(action, {"message": 'broken "thing"\n — ✓ 😀'})
    assert (fault.value.kind, fault.value.message) == ("trap", 'plugin aborted: broken "thing"\n — ✓ 😀')
    with pytest.raises(PluginFault) as long:
        load().call(action, {"message": "é" * 1000})
    assert long.value.kind == "trap" and long.value.message.startswith("plugin aborted: ééé")


def test_an_index_out_of_range_is_a_trap(load: Any) -> None:
    assert load().call("out_of_range", {"i": 1}).output == {"ok": True, "result": 2}
    with pytest.raises(PluginFault) as fault:
        load().call("out_of_range", {"i": 5})
    assert (fault.value.kind, fault.value.message) == ("trap", "plugin aborted: Index out of range")


def test_running_out_of_memory_is_memory_limit(load: Any) -> None:
    plugin = load(limits=Limits(memory_bytes=2 * 2**20))
    with pytest.raises(PluginFault) as fault:
        plugin.call("hog")
    assert fault.value.kind == "memory_limit"
    assert fault.value.message == "plugin aborted: out of memory allocating 65536 bytes"
    # One allocation that cannot fit, with memory far from the cap: the library says memory.
    with pytest.raises(PluginFault) as big:
        plugin.call("hog", {"chunk": 8 * 2**20})
    assert big.value.kind == "memory_limit"
    assert big.value.message == "plugin aborted: out of memory allocating 8388608 bytes"
    assert big.value.stats is not None and big.value.stats.peak_memory_bytes <= 128 * 1024
    # The next call in a fresh instance is fine.
    assert plugin.call("echo", {"a": 1}).output == {"ok": True, "result": {"a": 1}}


def test_a_healthy_call_is_small_and_steady(load: Any) -> None:
    plugin = load()
    stats = [plugin.call("echo", {"a": [1, "two"]}).stats for _ in range(40)]
    assert {s.peak_memory_bytes for s in stats} == {abi.WASM_PAGE_BYTES}
    assert len({s.fuel_consumed for s in stats}) == 1 and stats[0].fuel_consumed < 30_000, stats[0]
    # 50 records in and out: about 390,000 fuel; with asc's shadow stack (a runtime compiled as
    # a GC runtime) it was twice that.
    items = {"items": [{"name": "Ada", "n": n, "tags": ["x", "y"]} for n in range(50)]}
    assert plugin.call("echo", items).stats.fuel_consumed < 500_000


# Host calls -----------------------------------------------------------------------------------

def test_kv_helpers(load: Any, host: Host) -> None:
    assert load().call("kv").output["result"] == {
        "set": True, "set_default_scope": True, "get": {"x": [1, "two"]}, "other_scope_unset": True,
        "default_scope": 2, "list": ["a"], "delete": True, "gone": True, "host_error": None}
    assert host.kv == {("agent", "b"): 2}


def test_kv_unavailable_is_an_answer_the_plugin_sees(load: Any, host: Host) -> None:
    host.kv_down = True
    assert load().call("kv").output["result"] == {
        "set": False, "set_default_scope": False, "get": None, "other_scope_unset": False,
        "default_scope": -1, "list": None, "delete": False, "gone": False, "host_error": "unavailable"}


def test_host_call_answers(load: Any) -> None:
    plugin = load()
    ok = plugin.call("call", {"op": "test.echo", "args": {"q": "ü\"x😀"}}).output["result"]
    assert ok == {"ok": True, "transient": False, "error": None, "message": "", "host_error": None,
                  "result": {"args": {"q": "ü\"x😀"}}}
    assert plugin.call("call", {"op": "test.echo"}).output["result"]["result"] == {"args": {}}
    down = plugin.call("call", {"op": "test.down"}).output["result"]
    assert down == {"ok": False, "transient": True, "error": "unavailable",
                    "message": "the service is down",
                    "host_error": "unavailable", "result": None}
    unknown = plugin.call("call", {"op": "no.such"}).output["result"]
    assert (unknown["error"], unknown["transient"]) == ("unknown_op", False)


def test_host_call_without_capability_is_a_fault(load: Any) -> None:
    with pytest.raises(PluginFault) as fault:
        load(grants={"log"}).call("call", {"op": "test.echo"})
    assert fault.value.kind == "capability_denied"


def test_log_lines(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="cms.plugins.probe"):
        load().call("log", {"who": "Zoë 😀"})
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "cms.plugins.probe"]
    assert lines == [("DEBUG", "probe@0.1.0: debug line"), ("WARNING", "probe@0.1.0: warning line"),
                     ("INFO", "probe@0.1.0: 5 apples for Zoë 😀")]
