"""The Rust guest crate (plugin_sdk/guest/rust) in the real runtime: the template through the CLI,
and a probe plugin that exercises the crate's JSON, UI, host-call and failure paths. Each module
is compiled once for this file."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest

from cms.runtime import Limits, Plugin, PluginFault, Runtime, RuntimeConfig
from plugin_sdk import toolchain_rust
from plugin_sdk.ui import check_blocks
from tests.conftest import require
from tests.sdk.factories import GuestHost as Host

AGENT = {"agent": {"id": 7, "username": "demo.agent", "name": "Dana Agent", "agency_id": 1}}
CLI = [str(Path(sys.executable).parent / "cms-plugin")]

PROBE = r'''
use cms_plugin::{parse, Button, Cell, Ctx, Event, Field, Form, Kind, Level, Scope, Style, Tone, Type, Value, Writer};

fn echo(ctx: &mut Ctx) { let json = ctx.params.to_json(); ctx.result_json(json); }

fn parse_text(ctx: &mut Ctx) {
    let v = parse(ctx.param("text").str_or("").as_bytes());
    let mut r = Writer::new();
    r.obj().kbool("valid", v.is_some()).kjson("value", v.as_ref().unwrap_or(&Value::Null));
    ctx.result(r);
}

fn access(ctx: &mut Ctx) {
    let p = &ctx.params;
    let arr = p.get("arr");
    let mut r = Writer::new();
    r.obj().kstr("str_of_num", p.get("num").str_or("default"))
        .kint("int_of_str", p.get("str").int_or(-1)).kint("int_of_big", p.get("big").int_or(-1))
        .kint("int_of_whole", p.get("whole").int_or(-1)).kint("int_of_frac", p.get("frac").int_or(-1))
        .knum("num_of_int", p.get("num").num_or(-1.0)).knum("num_of_str", p.get("str").num_or(-1.0))
        .kbool("bool", p.get("flag").bool_or(false)).kbool("bool_of_null", p.get("nothing").bool_or(true))
        .kint("len_arr", arr.len() as i64).kint("len_str", p.get("str").len() as i64)
        .kjson("at_1", arr.at(1)).kbool("at_out_of_range", arr.at(99).kind() == Type::Missing)
        .kbool("get_on_array", arr.get("x").kind() == Type::Missing)
        .kbool("null_is_null", p.get("nothing").is_null()).kbool("missing_is_null", p.get("missing").is_null())
        .kbool("str_is_null", p.get("str").is_null())
        .kstr("nested", p.get("obj").get("inner").get("name").str_or("?"))
        .kstr("missing_chain", p.get("no").get("such").get("thing").str_or("?"))
        .kstr("agent", ctx.context.get("agent").get("name").str_or("?"))
        .kstr("action", &ctx.action).kobj("types");
    for (key, value) in p.members() {
        r.kint(key, value.kind() as i64);
    }
    ctx.result(r);
}

fn ui(ctx: &mut Ctx) {
    ctx.heading("Title \"quoted\"", 1);
    ctx.heading("No level", 0);
    ctx.text("Plain <b>not html</b>", None);
    ctx.text("Toned", Tone::Info);
    ctx.key_value(&[("Name", "Ada"), ("Line\nbreak", "Tab\there")]);
    ctx.table(&["Name", "Count", "Ratio", "Active", "Note"],
              &[vec!["Ada".into(), 3.into(), 0.25.into(), true.into(), Cell::Null],
                vec!["Zoë".into(), (-1).into(), 1e-3.into(), false.into(), Cell::Null]]);
    ctx.table(&["Empty"], &[]);
    ctx.list(false, &["one", "two"]);
    ctx.list(true, &["first"]);
    ctx.form(Form::new("save").title("Edit client")
        .field(Field::new("name", "Name").value("Ada").required())
        .field(Field::new("age", "Age").kind(Kind::Number).value_int(36))
        .field(Field::new("tier", "Tier").kind(Kind::Select).options(&[("gold", "Gold"), ("silver", "silver")]))
        .field(Field::new("vip", "vip").kind(Kind::Checkbox).value_bool(true))
        .button(Button::new("Save").style(Style::Primary))
        .button(Button::new("Delete").action("remove").style(Style::Danger).value("7")));
    ctx.form(Form::new("save"));
    ctx.form(Form::new("remove").button(Button::new("Only a button")));
    ctx.alert("Saved", Tone::Success);
    ctx.badge("VIP", Tone::Warning);
    ctx.terminal(&["$ ls", "\x1b[31mred\x1b[0m"]);
    ctx.timeline(&[Event { time: "09:00".into(), title: "Called".into(), text: Some("Left a message".into()), tone: Some(Tone::Info) },
                   Event { time: "10:00".into(), title: "Booked".into(), ..Default::default() }]);
    ctx.link("Call", "tel:+441234567");
    ctx.link("Client", "/clients/12");
    ctx.timer("2026-11-24T14:05:09Z", Some("On call"));
    ctx.timer("2026-11-24T14:05:09Z", None);
    ctx.block_json("{\"type\":\"badge\",\"text\":\"raw\"}");
    ctx.key_value(&[]);
}

fn fail(ctx: &mut Ctx) { ctx.fail(ctx.param("message").str_or("failed")) }

fn boom(ctx: &mut Ctx) {
    let items: Vec<i64> = Vec::new();
    let at = ctx.param("at").int_or(3) as usize;
    if ctx.param("formatted").bool_or(false) {
        panic!("formatted {} of {}", at, items.len());
    }
    ctx.result_json(items[at].to_string());
}

fn error(ctx: &mut Ctx) {
    ctx.text("dropped", None);
    ctx.result_json("{\"dropped\":true}".into());
    let (code, message) = (ctx.param("code").str_or("x").to_string(), ctx.param("message").str_or("y").to_string());
    ctx.error(&code, &message);
}

fn call(ctx: &mut Ctx) {
    let op = ctx.param("op").str_or("").to_string();
    let args = match ctx.param("args") { Value::Missing => String::new(), v => v.to_json() };
    let answer = ctx.call(&op, &args);
    let mut r = Writer::new();
    r.obj();
    match &answer {
        Ok(result) => { r.kbool("ok", true).kjson("result", result).knull("error"); }
        Err(e) => { r.kbool("ok", false).knull("result").kstr("error", &e.code).kstr("message", &e.message); }
    }
    r.key("host_error").opt_str(ctx.host_error());
    ctx.result(r);
}

fn kv(ctx: &mut Ctx) {
    let set = ctx.kv_set("a", Some(Scope::Plugin), "{\"x\":[1,\"two\"]}").is_ok();
    let set_default = ctx.kv_set("b", None, "2").is_ok();
    let get = ctx.kv_get("a", Some(Scope::Plugin));
    let other = ctx.kv_get("a", Some(Scope::Client));
    let default_scope = ctx.kv_get("b", None);
    let list = ctx.kv_list("", Some(Scope::Plugin));
    let delete = ctx.kv_delete("a", Some(Scope::Plugin)).is_ok();
    let gone = ctx.kv_get("a", Some(Scope::Plugin));
    let mut r = Writer::new();
    let show = |r: &mut Writer, k: &str, v: &Result<Value, cms_plugin::HostError>| match v {
        Ok(v) => { r.kjson(k, v); }
        Err(e) => { r.kstr(k, &format!("error {}", e.code)); }
    };
    r.obj().kbool("set", set).kbool("set_default_scope", set_default);
    show(&mut r, "get", &get);
    show(&mut r, "other_scope", &other);
    show(&mut r, "default_scope", &default_scope);
    match &list {
        Ok(keys) => { r.karr("list"); for k in keys { r.str(k); } r.end(); }
        Err(e) => { r.kstr("list", &format!("error {}", e.code)); }
    }
    r.kbool("delete", delete);
    show(&mut r, "gone", &gone);
    r.key("host_error").opt_str(ctx.host_error());
    ctx.result(r);
}

fn log_lines(ctx: &mut Ctx) {
    ctx.log(Level::Debug, "debug line");
    ctx.log(Level::Warn, "warning line");
    ctx.log(Level::Info, &format!("{} apples for {}", 5, ctx.param("who").str_or("?")));
}

fn deep(ctx: &mut Ctx) {
    let mut r = Writer::new();
    for _ in 0..65 { r.arr(); }
    ctx.result(r);
}

fn show(ctx: &mut Ctx) {
    let mut r = Writer::new();
    r.arr();
    for n in ctx.param("n").items() {
        let mut one = Writer::new();
        one.num(n.num_or(-1.0));
        r.str(&one.finish());
    }
    ctx.result(r);
}

fn hog(ctx: &mut Ctx) {
    let chunk = ctx.param("chunk").int_or(64 * 1024) as usize;
    let mut kept = Vec::new();
    loop {
        let mut block = vec![0u8; chunk];
        block[chunk - 1] = 1;
        kept.push(block);
    }
}

fn noop(_ctx: &mut Ctx) {}

cms_plugin::actions!("echo" => echo, "parse" => parse_text, "access" => access, "ui" => ui,
                     "fail" => fail, "boom" => boom, "error" => error, "call" => call, "kv" => kv,
                     "log" => log_lines, "deep" => deep, "show" => show, "hog" => hog, "noop" => noop);
'''

PROBE_CARGO = '''[package]
name = "probe"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
cms_plugin = "1"
'''


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The template (made by `cms-plugin new`) and its dist/, and the probe's module."""
    require(toolchain_rust.available(), f"cargo with the wasm32 std ({toolchain_rust.INSTALL})")
    root = tmp_path_factory.mktemp("guest-rust")
    new = cli(root, "new", "Hello World", "--lang", "rust")
    assert new.returncode == 0, new.stderr
    template = root / "hello-world"
    probe = root / "probe"
    (probe / "src").mkdir(parents=True)
    (probe / "src" / "lib.rs").write_text(PROBE, encoding="utf-8")
    (probe / "Cargo.toml").write_text(PROBE_CARGO, encoding="utf-8")
    with ThreadPoolExecutor(max_workers=2) as pool:
        building = pool.submit(subprocess.run, [*CLI, "build", "--check-reproducible", "--json"],
                          cwd=template, capture_output=True, text=True, timeout=600)
        module = pool.submit(toolchain_rust.compile_module, probe / "src" / "lib.rs",
                             root / "probe.wasm", probe)
        build, probe_wasm = building.result(), module.result()
    assert build.returncode == 0, build.stderr
    return {"template": template, "build": json.loads(build.stdout),
            "wasm": {"template": (template / "dist" / "hello-world.wasm").read_bytes(),
                     "probe": probe_wasm}}


@pytest.fixture(scope="module")
def _runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Host]]:
    shared = Host()
    runtime = Runtime(RuntimeConfig(artifact_dir=tmp_path_factory.mktemp("artifacts"),
                                    compile_missing=True), shared.ops())
    yield runtime, shared
    runtime.close()


@pytest.fixture
def host(_runtime: tuple[Runtime, Host]) -> Host:
    """The host ops' state, empty for each test."""
    shared = _runtime[1]
    shared.kv.clear()
    shared.kv_down = False
    return shared


@pytest.fixture
def load(built: dict[str, Any], host: Host, _runtime: tuple[Runtime, Host]) -> Any:
    """load(name, grants=..., limits=...) -> Plugin, with `host`'s ops."""
    def loader(name: str, grants: Iterable[str] = ("log", "kv", "test"),
               limits: Limits | None = None) -> Plugin:
        return _runtime[0].load(built["wasm"][name], plugin_id="hello-world" if name == "template" else name,
                                version="0.1.0", grants=frozenset(grants), limits=limits)
    return loader


def cli(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=folder, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


# The template through the CLI ------------------------------------------------------------------

def test_template_builds_reproducibly_and_follows_the_abi(built: dict[str, Any]) -> None:
    import wasmtime

    assert built["build"]["reproducible"] is True
    wasm = built["wasm"]["template"]
    assert len(wasm) < 80_000, len(wasm)
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert sorted(f"{i.module}.{i.name}" for i in module.imports) == ["cms.call", "cms.log"]
    assert sorted(e.name for e in module.exports) == ["cms_abi_version", "cms_alloc", "cms_handle", "memory"]
    assert b"/tmp" not in wasm and str(built["template"]).encode() not in wasm


def test_template_checks_tests_with_chaos_and_packages(built: dict[str, Any]) -> None:
    folder = built["template"]
    check = cli(folder, "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["ok"] is True and report["facts"]["ops"] == ["kv.get", "kv.set"]
    test = cli(folder, "test", "--chaos", "--soak", "60", "--json")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "7 of 7" in cli(folder, "test").stdout
    assert cli(folder, "keygen", "--dir", str(folder / "keys")).returncode == 0
    package = cli(folder, "package", "--key", str(folder / "keys" / "author.key"))
    assert package.returncode == 0, package.stderr
    assert (folder / "dist" / "hello-world-0.1.0.cmsplugin").is_file()


def test_template_has_the_c_templates_vectors() -> None:
    templates = Path(toolchain_rust.__file__).parent / "templates"
    assert ((templates / "rust" / "tests" / "vectors.json.tmpl").read_bytes()
            == (templates / "c" / "tests" / "vectors.json.tmpl").read_bytes())
    assert sorted(p.name for p in (templates / "rust").rglob("*") if p.is_file()) == [
        ".gitignore.tmpl", "Cargo.toml.tmpl", "README.md.tmpl", "lib.rs.tmpl", "plugin.toml.tmpl",
        "vectors.json.tmpl"]


def test_template_counts_greetings_in_kv(load: Any, host: Host) -> None:
    plugin = load("template")
    first = plugin.call("greet", {"name": "  Ada  "}, AGENT).output
    assert first == {"ok": True, "result": {"greeting": "Hello, Ada!", "count": 1},
                     "ui": [{"type": "alert", "text": "Hello, Ada!", "tone": "success"}]}
    assert plugin.call("greet", {"name": "Zoë 😀"}, AGENT).output["result"] == {
        "greeting": "Hello, Zoë 😀!", "count": 2}
    assert host.kv == {("agent", "greetings"): 2}
    widget = plugin.call("widget", {}, AGENT).output
    assert [b["type"] for b in widget["ui"]] == ["heading", "text", "badge", "form"]
    assert widget["ui"][2] == {"type": "badge", "text": "2", "tone": "info"}
    host.kv_down = True
    assert plugin.call("greet", {"name": "Ada"}, AGENT).output["result"] == {"greeting": "Hello, Ada!",
                                                                             "count": None}


def test_a_cargo_without_the_wasm32_std_is_one_line_and_exit_2(built: dict[str, Any],
                                                                tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("cargo", "rustc"):
        (fake / name).write_text(f"#!/bin/sh\n[ \"$1\" = --print ] && echo {tmp_path}\nexit 0\n")
        (fake / name).chmod(0o755)
    done = cli(built["template"], "build", env={"CMS_CARGO": str(fake / "cargo")})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert toolchain_rust.INSTALL in lines[0] and str(fake / "cargo") in lines[0]


def test_a_cargo_that_does_not_work_is_one_line_and_exit_2(built: dict[str, Any],
                                                          tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "cargo").write_text("#!/bin/sh\nexit 101\n")  # a broken cargo beside a good rustc
    (fake / "cargo").chmod(0o755)
    rustc, _ = toolchain_rust.find_cargo()[1:]
    (fake / "rustc").symlink_to(rustc)
    done = cli(built["template"], "build", env={"CMS_CARGO": str(fake / "cargo")})
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == (f"cms-plugin: {fake / 'cargo'} exited with status 101 and said nothing: set "
                    f"CMS_CARGO to a working cargo, or {toolchain_rust.INSTALL}")


# Envelopes and JSON ----------------------------------------------------------------------------

def test_unknown_action_and_bad_input(load: Any) -> None:
    plugin = load("probe")
    assert plugin.call('no "such"').output == {"ok": False, "error": {
        "code": "unknown_action", "message": 'this plugin has no action "no "such""'}}
    for data in (b"not json", b"", b"[]", b'{"abi":2,"action":"echo"}', b'{"abi":1,"action":""}',
                 b'{"abi":1,"action":"echo","params":[]}', b'{"abi":1,"action":"\xff"}'):
        assert plugin.call_raw(data).output["error"]["code"] == "bad_input", data
    assert plugin.call_raw(b'{"abi":1,"action":"echo"}').output == {"ok": True, "result": {}}


TRICKY = ["", 'quote " and backslash \\ /', "\b\f\n\r\t", "".join(map(chr, range(32))), "\x7f",
          "Zoë", "日本語", "a😀b", "\U0010ffff", "\u2028", "\u0000 after nul", "x" * 5000]
NUMBERS = [0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63), 10**19, 0.1, -2.5, 0.30000000000000004,
           1e300, -1e-300, 5e-324, 1.7976931348623157e308, 1e21, 1.5e17, 9007199254740993.0]


def test_strings_numbers_and_nesting_round_trip(load: Any) -> None:
    plugin = load("probe")
    params = {"strings": TRICKY, "keys": {s: i for i, s in enumerate(TRICKY[:10])}, "numbers": NUMBERS,
              "nested": {"a": [[], {}, [[[{"b": None}]]]], "t": True}}
    assert plugin.call_raw(json.dumps({"abi": 1, "action": "echo", "params": params}).encode()
                           ).output["result"] == params
    assert plugin.call("echo", params).output["result"] == params
    data = b'{"abi":1,"action":"echo","params":{"s":"\\ud83d\\ude00 \\u00e9 \\/","lone":"\\ud800 x"}}'
    assert plugin.call_raw(data).output["result"] == {"s": "😀 é /", "lone": "\ufffd x"}


def test_random_doubles_round_trip_and_print_shortest(load: Any) -> None:
    rng = random.Random(7)
    values = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(600)]
    values = [v for v in values if math.isfinite(v)]
    plugin = load("probe")
    assert plugin.call("echo", {"n": values}).output["result"]["n"] == values
    shown = {0.1: "0.1", 1e300: "1e300", 5e-324: "5e-324", 1e23: "1e23", -2.5e-8: "-2.5e-8",
             1e-5: "0.00001", 1e16: "10000000000000000", 1.5e17: "1.5e17", 12345678.125: "12345678.125"}
    assert plugin.call("show", {"n": list(shown)}).output["result"] == list(shown.values())


@pytest.mark.parametrize(("text", "value"), [
    ('{"a": [1, 2.5, "x", true, false, null]}', {"a": [1, 2.5, "x", True, False, None]}),
    (' \n\t[ ] ', []), ("-0", 0), ("1E+2", 100.0), ("[" * 32 + "]" * 32, json.loads("[" * 32 + "]" * 32)),
])
def test_parse_accepts_json(load: Any, text: str, value: Any) -> None:
    assert load("probe").call("parse", {"text": text}).output["result"] == {"valid": True, "value": value}


@pytest.mark.parametrize("text", ["", "{", "[1,]", '{"a" 1}', "01", "1.", ".5", "-", "1e", "+1", "tru",
                                  "NaN", '"\\x"', '"\\u12G4"', '"a\u0001b"', "[1] x", "[" * 33 + "]" * 33])
def test_parse_rejects_what_is_not_json(load: Any, text: str) -> None:
    assert load("probe").call("parse", {"text": text}).output["result"] == {"valid": False, "value": None}


def test_accessors_give_defaults_on_type_mismatch(load: Any) -> None:
    params = {"num": 42, "str": "text", "big": 2**63 - 1, "whole": 2.0, "frac": 2.5, "flag": True,
              "nothing": None, "arr": [10, "twenty", None], "obj": {"inner": {"name": "deep"}}}
    assert load("probe").call("access", params, AGENT).output["result"] == {
        "str_of_num": "default", "int_of_str": -1, "int_of_big": 2**63 - 1, "int_of_whole": 2,
        "int_of_frac": -1, "num_of_int": 42, "num_of_str": -1, "bool": True, "bool_of_null": True,
        "len_arr": 3, "len_str": 4, "at_1": "twenty", "at_out_of_range": True, "get_on_array": True,
        "null_is_null": True, "missing_is_null": True, "str_is_null": False, "nested": "deep",
        "missing_chain": "?", "agent": "Dana Agent", "action": "access",
        "types": {"num": 3, "str": 4, "big": 3, "whole": 3, "frac": 3, "flag": 2, "nothing": 1,
                  "arr": 5, "obj": 6}}


# UI ----------------------------------------------------------------------------------------

def test_every_ui_block_follows_the_schema(load: Any) -> None:
    ui = load("probe").call("ui").output["ui"]
    check_blocks(ui, ["save", "remove"])
    assert ui == [
        {"type": "heading", "text": 'Title "quoted"', "level": 1},
        {"type": "heading", "text": "No level"},
        {"type": "text", "text": "Plain <b>not html</b>"},
        {"type": "text", "text": "Toned", "tone": "info"},
        {"type": "key_value", "items": [{"key": "Name", "value": "Ada"},
                                        {"key": "Line\nbreak", "value": "Tab\there"}]},
        {"type": "table", "columns": ["Name", "Count", "Ratio", "Active", "Note"],
         "rows": [["Ada", 3, 0.25, True, None], ["Zoë", -1, 0.001, False, None]]},
        {"type": "table", "columns": ["Empty"], "rows": []},
        {"type": "list", "items": ["one", "two"]},
        {"type": "list", "ordered": True, "items": ["first"]},
        {"type": "form", "action": "save", "title": "Edit client",
         "fields": [{"name": "name", "label": "Name", "value": "Ada", "required": True},
                    {"name": "age", "label": "Age", "kind": "number", "value": 36},
                    {"name": "tier", "label": "Tier", "kind": "select",
                     "options": [{"value": "gold", "label": "Gold"}, {"value": "silver", "label": "silver"}]},
                    {"name": "vip", "label": "vip", "kind": "checkbox", "value": True}],
         "buttons": [{"label": "Save", "style": "primary"},
                     {"label": "Delete", "action": "remove", "style": "danger", "value": "7"}]},
        {"type": "form", "action": "save"},
        {"type": "form", "action": "remove", "buttons": [{"label": "Only a button"}]},
        {"type": "alert", "text": "Saved", "tone": "success"},
        {"type": "badge", "text": "VIP", "tone": "warning"},
        {"type": "terminal", "lines": ["$ ls", "\x1b[31mred\x1b[0m"]},
        {"type": "timeline", "items": [{"time": "09:00", "title": "Called", "text": "Left a message",
                                        "tone": "info"}, {"time": "10:00", "title": "Booked"}]},
        {"type": "link", "text": "Call", "href": "tel:+441234567"},
        {"type": "link", "text": "Client", "href": "/clients/12"},
        {"type": "timer", "label": "On call", "since": "2026-11-24T14:05:09Z"},
        {"type": "timer", "since": "2026-11-24T14:05:09Z"},
        {"type": "badge", "text": "raw"},
        {"type": "key_value", "items": []},
    ]


def test_error_answer_replaces_result_and_ui(load: Any) -> None:
    message = 'Bad "name"\n\tline \\ two \x01 — ✓'
    output = load("probe").call("error", {"code": "bad_name", "message": message}).output
    assert output == {"ok": False, "error": {"code": "bad_name", "message": message}}


# Failing cleanly ---------------------------------------------------------------------------

def test_fail_panic_and_runaway_nesting_are_traps_with_the_message(load: Any) -> None:
    plugin = load("probe")
    with pytest.raises(PluginFault) as fail:
        plugin.call("fail", {"message": 'broken "thing"\n — ✓'})
    assert (fail.value.kind, fail.value.message) == ("trap", 'plugin aborted: broken "thing"\n — ✓')
    with pytest.raises(PluginFault) as index:
        plugin.call("boom")
    assert index.value.kind == "trap"
    assert index.value.message == ("plugin aborted: panic: index out of bounds: the len is 0 but the "
                                   "index is 3 at src/lib.rs:" + index.value.message.rsplit(":", 1)[1])
    with pytest.raises(PluginFault) as formatted:
        plugin.call("boom", {"formatted": True})
    assert formatted.value.message.startswith("plugin aborted: panic: formatted 3 of 0 at src/lib.rs:")
    with pytest.raises(PluginFault) as deep:
        plugin.call("deep")
    assert deep.value.message == "plugin aborted: JSON writer: nested deeper than 64"
    assert plugin.call("noop").output == {"ok": True}  # the next call is a fresh instance


def test_running_out_of_memory_is_memory_limit(load: Any) -> None:
    plugin = load("probe", grants=set(), limits=Limits(memory_bytes=2 * 2**20))
    with pytest.raises(PluginFault) as fault:
        plugin.call("hog")
    assert fault.value.kind == "memory_limit"
    assert fault.value.message.startswith("plugin aborted: out of memory allocating ")
    with pytest.raises(PluginFault) as big:
        plugin.call("hog", {"chunk": 8 * 2**20})
    assert (big.value.kind, big.value.message) == ("memory_limit",
                                                   "plugin aborted: out of memory allocating 8388608 bytes")
    assert big.value.stats is not None and big.value.stats.peak_memory_bytes <= 256 * 1024


# Host calls --------------------------------------------------------------------------------

def test_kv_helpers(load: Any, host: Host) -> None:
    assert load("probe").call("kv").output["result"] == {
        "set": True, "set_default_scope": True, "get": {"x": [1, "two"]}, "other_scope": None,
        "default_scope": 2, "list": ["a"], "delete": True, "gone": None, "host_error": None}
    assert host.kv == {("agent", "b"): 2}
    host.kv_down = True
    down = "error unavailable"
    assert load("probe").call("kv").output["result"] == {
        "set": False, "set_default_scope": False, "get": down, "other_scope": down,
        "default_scope": down, "list": down, "delete": False, "gone": down, "host_error": "unavailable"}


def test_host_call_answers_and_errors(load: Any) -> None:
    plugin = load("probe")
    ok = plugin.call("call", {"op": "test.echo", "args": {"q": "ü\"x"}}).output["result"]
    assert ok == {"ok": True, "result": {"args": {"q": "ü\"x"}}, "error": None, "host_error": None}
    assert plugin.call("call", {"op": "test.echo"}).output["result"]["result"] == {"args": {}}
    down = plugin.call("call", {"op": "test.down"}).output["result"]
    assert down == {"ok": False, "result": None, "error": "unavailable",
                    "message": "the service is down", "host_error": "unavailable"}
    assert plugin.call("call", {"op": "no.such"}).output["result"]["error"] == "unknown_op"
    with pytest.raises(PluginFault) as denied:
        load("probe", grants={"log"}).call("call", {"op": "test.echo"})
    assert denied.value.kind == "capability_denied"


def test_log_lines(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="cms.plugins.probe"):
        load("probe").call("log", {"who": "Ada"})
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "cms.plugins.probe"]
    assert lines == [("DEBUG", "probe@0.1.0: debug line"), ("WARNING", "probe@0.1.0: warning line"),
                     ("INFO", "probe@0.1.0: 5 apples for Ada")]


def test_probe_call_overhead_is_small(load: Any) -> None:
    stats = load("probe").call("noop").stats
    assert stats.fuel_consumed < 20_000, stats
    assert stats.peak_memory_bytes <= 2 * 65536, stats
