"""The C guest library (plugin_sdk/guest/c/cms_plugin.h) in the real runtime: the template plugin,
a probe plugin that exercises the library's JSON, UI, host-call and failure paths, and the leaky
and oom fixtures. Every module is compiled once for this file, all four at the same time."""

from __future__ import annotations

import json
import logging
import math
import random
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest

from cms.runtime import Limits, Plugin, PluginFault, Runtime, RuntimeConfig
from plugin_sdk import abi
from plugin_sdk.manifest import load_manifest
from plugin_sdk.toolchain import compile_module, zig_available
from plugin_sdk.ui import check_blocks
from tests.conftest import require
from tests.sdk.factories import GuestHost as Host

SDK = Path(__file__).resolve().parents[2] / "plugin_sdk"
FIXTURES = Path(__file__).parent / "plugins"
AGENT = {"agent": {"id": 7, "username": "demo.agent", "name": "Dana Agent", "agency_id": 1}}

PROBE = r'''
#include "cms_plugin.h"

static void echo(cms_ctx *ctx) { cms_w_json(cms_result(ctx), ctx->params); }

static void parse(cms_ctx *ctx) {
    const cms_json *text = cms_param(ctx, "text");
    const cms_json *v = cms_parse(cms_as_str(text, ""), cms_len(text));
    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kbool(r, "valid", v != NULL);
    cms_w_kjson(r, "value", v);
    cms_w_end(r);
}

static void access(cms_ctx *ctx) {
    const cms_json *p = ctx->params, *arr = cms_get(p, "arr");
    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kstr(r, "str_of_num", cms_as_str(cms_get(p, "num"), "default"));
    cms_w_kint(r, "int_of_str", cms_as_int(cms_get(p, "str"), -1));
    cms_w_kint(r, "int_of_int", cms_as_int(cms_get(p, "num"), -1));
    cms_w_kint(r, "int_of_big", cms_as_int(cms_get(p, "big"), -1));
    cms_w_kint(r, "int_of_whole", cms_as_int(cms_get(p, "whole"), -1));
    cms_w_kint(r, "int_of_frac", cms_as_int(cms_get(p, "frac"), -1));
    cms_w_knum(r, "num_of_int", cms_as_num(cms_get(p, "num"), -1));
    cms_w_knum(r, "num_of_str", cms_as_num(cms_get(p, "str"), -1));
    cms_w_kbool(r, "bool", cms_as_bool(cms_get(p, "flag"), 0));
    cms_w_kbool(r, "bool_of_null", cms_as_bool(cms_get(p, "nothing"), 1));
    cms_w_kint(r, "len_arr", cms_len(arr));
    cms_w_kint(r, "len_str", cms_len(cms_get(p, "str")));
    cms_w_kint(r, "len_num", cms_len(cms_get(p, "num")));
    cms_w_kjson(r, "at_1", cms_at(arr, 1));
    cms_w_kbool(r, "at_out_of_range", cms_at(arr, 99) == NULL);
    cms_w_kbool(r, "at_on_object", cms_at(p, 0) == NULL);
    cms_w_kbool(r, "get_on_array", cms_get(arr, "x") == NULL);
    cms_w_kbool(r, "null_is_null", cms_is_null(cms_get(p, "nothing")));
    cms_w_kbool(r, "missing_is_null", cms_is_null(cms_get(p, "missing")));
    cms_w_kbool(r, "str_is_null", cms_is_null(cms_get(p, "str")));
    cms_w_kstr(r, "nested", cms_as_str(cms_get(cms_get(cms_get(p, "obj"), "inner"), "name"), "?"));
    cms_w_kstr(r, "missing_chain", cms_as_str(cms_get(cms_get(cms_get(p, "no"), "such"), "thing"), "?"));
    cms_w_kstr(r, "agent", cms_as_str(cms_get(cms_get(ctx->context, "agent"), "name"), "?"));
    cms_w_kstr(r, "action", ctx->action);
    cms_w_kobj(r, "types");
    for (const cms_json *m = cms_first(p); m; m = cms_next(m)) cms_w_kint(r, m->key, cms_type(m));
    cms_w_end(r);
    cms_w_end(r);
}

static void fmt(cms_ctx *ctx) {
    cms_result_json(ctx, cms_stringify(cms_parse("[1, 2]", 6)));
    cms_buf *r = cms_result(ctx); /* replaces the first result */
    cms_w_obj(r);
    cms_w_kstr(r, "fmt", cms_fmt("%s|%d|%i|%ld|%lld|%u|%lu|%x|%zu|%c|%%|%.*s|%g|%s.", "str", -42, 7,
                                 -1234567L, -9223372036854775807LL - 1, 4000000000u, 4294967295UL,
                                 255, (size_t)12, 'z', 3, "abcdef", 0.5, (const char *)0));
    cms_w_kstr(r, "trim", cms_trim(" \t\n padded \r\n"));
    cms_w_kstr(r, "trim_blank", cms_trim("   "));
    cms_w_kbool(r, "streq", cms_streq("a", "a") && !cms_streq("a", "ab") && !cms_streq("a", 0)
                            && cms_streq(0, 0));
    char *a = cms_arena_alloc(3), *b = cms_arena_alloc(16);
    int zero = 1;
    for (int i = 0; i < 16; i++) zero &= b[i] == 0;
    cms_w_kbool(r, "aligned", ((uintptr_t)a % 8 == 0) && ((uintptr_t)b % 8 == 0) && b > a);
    cms_w_kbool(r, "zeroed", zero);
    cms_w_kstr(r, "dup", cms_strndup("abcdef", 3));
    cms_buf s = {0};
    for (int i = 0; i < 1000; i++) cms_buf_putc(&s, (char)('a' + i % 26));
    cms_buf_fmt(&s, "<%d>", 1000);
    cms_w_kint(r, "built_len", (long long)strlen(cms_buf_str(&s)));
    cms_w_kstr(r, "built_tail", cms_buf_str(&s) + 990);
    cms_w_end(r);
}

static void ui(cms_ctx *ctx) {
    cms_ui_heading(ctx, "Title \"quoted\"", 1);
    cms_ui_heading(ctx, "No level", 0);
    cms_ui_text(ctx, "Plain <b>not html</b>", NULL);
    cms_ui_text(ctx, "Toned", "info");
    cms_ui_key_value(ctx);
    cms_ui_pair(ctx, "Name", "Ada");
    cms_ui_pair(ctx, "Line\nbreak", "Tab\there");
    cms_ui_table(ctx, (const char *[]){"Name", "Count", "Ratio", "Active", "Note", NULL});
    cms_ui_row(ctx);
    cms_ui_cell(ctx, "Ada"); cms_ui_cell_int(ctx, 3); cms_ui_cell_num(ctx, 0.25);
    cms_ui_cell_bool(ctx, 1); cms_ui_cell_null(ctx);
    cms_ui_row(ctx);
    cms_ui_cell(ctx, "Zo\xc3\xab"); cms_ui_cell_int(ctx, -1); cms_ui_cell_num(ctx, 1e-3);
    cms_ui_cell_bool(ctx, 0); cms_ui_cell(ctx, NULL);
    cms_ui_table(ctx, (const char *[]){"Empty", NULL});
    cms_ui_list(ctx, 0);
    cms_ui_item(ctx, "one");
    cms_ui_item(ctx, "two");
    cms_ui_list(ctx, 1);
    cms_ui_item(ctx, "first");
    cms_ui_form(ctx, "save", "Edit client");
    cms_ui_field(ctx, &(cms_field){.name = "name", .label = "Name", .value = "Ada", .required = 1});
    cms_ui_field(ctx, &(cms_field){.name = "age", .label = "Age", .kind = "number", .value_json = "36"});
    cms_ui_field(ctx, &(cms_field){.name = "tier", .label = "Tier", .kind = "select",
                                   .options = (const cms_option[]){{"gold", "Gold"}, {"silver", 0}, {0}}});
    cms_ui_field(ctx, &(cms_field){.name = "vip", .kind = "checkbox", .value_json = "true"});
    cms_ui_button(ctx, &(cms_button){.label = "Save", .style = "primary"});
    cms_ui_button(ctx, &(cms_button){.label = "Delete", .action = "remove", .style = "danger", .value = "7"});
    cms_ui_form(ctx, "save", NULL);
    cms_ui_form(ctx, "remove", NULL);
    cms_ui_button(ctx, &(cms_button){.label = "Only a button"});
    cms_ui_alert(ctx, "Saved", "success");
    cms_ui_badge(ctx, "VIP", "warning");
    cms_ui_terminal(ctx);
    cms_ui_line(ctx, "$ ls");
    cms_ui_line(ctx, "\x1b[31mred\x1b[0m");
    cms_ui_timeline(ctx);
    cms_ui_event(ctx, "09:00", "Called", "Left a message", "info");
    cms_ui_event(ctx, "10:00", "Booked", NULL, NULL);
    cms_ui_link(ctx, "Call", "tel:+441234567");
    cms_ui_link(ctx, "Client", "/clients/12");
    cms_ui_timer(ctx, "On call", "2026-11-24T14:01:57Z");
    cms_ui_timer(ctx, NULL, "2026-11-24T14:01:57Z");
    cms_ui_block_json(ctx, "{\"type\":\"badge\",\"text\":\"raw\"}");
    cms_ui_key_value(ctx);
    cms_ui_end(ctx);
}

static void fail(cms_ctx *ctx) { cms_fail(ctx, cms_as_str(cms_param(ctx, "message"), "failed")); }

static void error(cms_ctx *ctx) {
    cms_ui_text(ctx, "dropped", NULL);
    cms_result_json(ctx, "{\"dropped\":true}");
    cms_error(ctx, cms_as_str(cms_param(ctx, "code"), "x"), cms_as_str(cms_param(ctx, "message"), "y"));
}

static void call(cms_ctx *ctx) {
    const cms_json *args = cms_param(ctx, "args");
    const cms_json *a = cms_call(ctx, cms_as_str(cms_param(ctx, "op"), ""), args ? cms_stringify(args) : NULL);
    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kjson(r, "answer", a);
    cms_w_kbool(r, "ok", cms_call_ok(a));
    cms_w_kstr(r, "error", cms_call_error(a));
    cms_w_kstr(r, "message", cms_call_message(a));
    cms_w_kstr(r, "host_error", cms_host_error(ctx));
    cms_w_kjson(r, "result", cms_call_result(a));
    cms_w_end(r);
}

static void kv(cms_ctx *ctx) {
    cms_buf *r = cms_result(ctx);
    cms_w_obj(r);
    cms_w_kbool(r, "set", cms_kv_set(ctx, "a", "plugin", "{\"x\":[1,\"two\"]}"));
    cms_w_kbool(r, "set_default_scope", cms_kv_set(ctx, "b", NULL, "2"));
    cms_w_kjson(r, "get", cms_kv_get(ctx, "a", "plugin"));
    cms_w_kjson(r, "other_scope", cms_kv_get(ctx, "a", "client"));
    cms_w_kjson(r, "default_scope", cms_kv_get(ctx, "b", NULL));
    cms_w_kjson(r, "list", cms_kv_list(ctx, "", "plugin"));
    cms_w_kbool(r, "delete", cms_kv_delete(ctx, "a", "plugin"));
    const cms_json *gone = cms_kv_get(ctx, "a", "plugin");
    cms_w_kbool(r, "gone", gone != NULL && cms_is_null(gone));
    cms_w_kstr(r, "host_error", cms_host_error(ctx));
    cms_w_end(r);
}

static void log_lines(cms_ctx *ctx) {
    cms_log(ctx, CMS_DEBUG, "debug line");
    cms_log(ctx, CMS_WARN, "warning line");
    cms_logf(ctx, CMS_INFO, "%d apples for %s", 5, cms_as_str(cms_param(ctx, "who"), "?"));
}

static void deep(cms_ctx *ctx) {
    cms_buf *r = cms_result(ctx);
    for (int i = 0; i < 65; i++) cms_w_arr(r);
}

static void misuse(cms_ctx *ctx) {
    cms_ui_heading(ctx, "x", 0);
    cms_ui_pair(ctx, "no", "key_value block");
}

static void show(cms_ctx *ctx) {
    cms_buf *r = cms_result(ctx);
    cms_w_arr(r);
    for (const cms_json *n = cms_first(cms_param(ctx, "n")); n; n = cms_next(n))
        cms_w_str(r, cms_fmt("%g", cms_as_num(n, -1)));
    cms_w_end(r);
}

static void noop(cms_ctx *ctx) { (void)ctx; }

CMS_ACTIONS(CMS_ACTION("echo", echo), CMS_ACTION("parse", parse), CMS_ACTION("access", access),
            CMS_ACTION("fmt", fmt), CMS_ACTION("ui", ui), CMS_ACTION("fail", fail),
            CMS_ACTION("error", error), CMS_ACTION("call", call), CMS_ACTION("kv", kv),
            CMS_ACTION("log", log_lines), CMS_ACTION("deep", deep), CMS_ACTION("misuse", misuse),
            CMS_ACTION("show", show), CMS_ACTION("noop", noop))
'''


def instantiate_template(target: Path) -> Path:
    """The C template copied into `target` the way `cms-plugin new "Hello World"` fills it in."""
    values = {"{{id}}": "hello-world", "{{name}}": "Hello World", "{{ident}}": "hello_world"}
    template = SDK / "templates" / "c"
    for source in template.rglob("*"):
        if source.is_dir():
            continue
        relative = source.relative_to(template)
        if relative.suffix == ".tmpl":
            relative = relative.with_suffix("")
        text = source.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (target / relative).write_text(text, encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """folder and wasm bytes of: the template, the probe, and the leaky and oom fixtures."""
    require(zig_available(), "the ziglang package (pip install 'cms[sdk]')")
    root = tmp_path_factory.mktemp("guest-c")
    template = instantiate_template(root / "hello-world")
    (root / "probe").mkdir()
    (root / "probe" / "probe.c").write_text(PROBE, encoding="utf-8")
    sources = {"template": template / "src" / "main.c", "probe": root / "probe" / "probe.c",
               "leaky": FIXTURES / "leaky" / "src" / "main.c",
               "oom": FIXTURES / "oom" / "src" / "main.c",
               "unchecked": FIXTURES / "unchecked" / "src" / "main.c"}
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        futures = {name: pool.submit(compile_module, "c", source, root / "out" / f"{name}.wasm")
                   for name, source in sources.items()}
        wasm = {name: future.result() for name, future in futures.items()}
    return {"wasm": wasm, "template": template}


@pytest.fixture(scope="module")
def _runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Host]]:
    """One runtime for the module (each reserves address space for its sandbox pool)."""
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
    runtime = _runtime[0]

    def loader(name: str, grants: Iterable[str] = ("log", "kv", "test"),
               limits: Limits | None = None) -> Plugin:
        return runtime.load(built["wasm"][name], plugin_id="hello-world" if name == "template" else name,
                            version="0.1.0", grants=frozenset(grants), limits=limits)
    return loader


def raw(plugin: Plugin, envelope: Any) -> dict[str, Any]:
    """Call with an input encoded by json.dumps (ASCII only: every non-ASCII character escaped)."""
    data = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
    return plugin.call_raw(data).output


# The template ---------------------------------------------------------------------------------

def test_template_module_is_small_and_follows_the_abi(built: dict[str, Any]) -> None:
    import wasmtime

    wasm = built["wasm"]["template"]
    assert len(wasm) < 20_000, len(wasm)  # -Oz: about 13 KB
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert sorted(f"{i.module}.{i.name}" for i in module.imports) == ["cms.call", "cms.log"]
    assert sorted(e.name for e in module.exports) == ["cms_abi_version", "cms_alloc", "cms_handle",
                                                      "memory"]
    # Only the ops it uses appear in the module (unused kv helpers are compiled out).
    from plugin_sdk.project import ops_named_in
    assert ops_named_in(wasm) == {"kv.get", "kv.set"}
    assert ops_named_in(built["wasm"]["oom"]) == set()


def test_template_vectors_pass_with_chaos_and_a_soak(built: dict[str, Any], tmp_path: Path) -> None:
    from plugin_sdk.testing import Harness
    from plugin_sdk.vectors import load_vectors

    folder = built["template"]
    manifest = load_manifest(folder)
    assert manifest.build_lang == "c" and manifest.build_source == "src/main.c"
    vectors = load_vectors(folder, manifest)
    assert len(vectors) >= 5
    harness = Harness(built["wasm"]["template"], manifest, tmp_path)
    try:
        for vector in vectors:
            assert harness.run_vector(vector).problem is None, vector.name
            for chaos in ("fail", "timeout"):
                assert harness.run_vector(vector, chaos).problem is None, (chaos, vector.name)
        for soak in harness.soak(vectors, 40):
            assert soak.problem is None and not soak.faults, soak.summary()
    finally:
        harness.close()


def test_template_counts_greetings_in_kv(load: Any, host: Host, built: dict[str, Any]) -> None:
    plugin = load("template")
    actions = load_manifest(built["template"]).actions
    first = plugin.call("greet", {"name": "  Ada  "}, AGENT).output
    assert first == {"ok": True, "result": {"greeting": "Hello, Ada!", "count": 1},
                     "ui": [{"type": "alert", "text": "Hello, Ada!", "tone": "success"}]}
    assert plugin.call("greet", {"name": "Zoë 😀"}, AGENT).output["result"] == {
        "greeting": "Hello, Zoë 😀!", "count": 2}
    assert host.kv == {("agent", "greetings"): 2}
    widget = plugin.call("widget", {}, AGENT).output
    assert widget["ok"] is True
    check_blocks(widget["ui"], actions)
    assert [b["type"] for b in widget["ui"]] == ["heading", "text", "badge", "form"]
    assert widget["ui"][2] == {"type": "badge", "text": "2", "tone": "info"}
    assert widget["ui"][3] == {"type": "form", "action": "greet",
                               "fields": [{"name": "name", "label": "Name", "placeholder": "Ada",
                                           "required": True}],
                               "buttons": [{"label": "Greet", "style": "primary"}]}
    blank = plugin.call("greet", {"name": " \t "}, AGENT).output
    assert blank == {"ok": False, "error": {"code": "bad_name", "message": "Name must not be empty"}}


def test_template_answers_gracefully_when_kv_is_unavailable(load: Any, host: Host,
                                                            built: dict[str, Any]) -> None:
    plugin = load("template")
    host.kv_down = True
    widget = plugin.call("widget", {}, AGENT).output
    assert widget["ok"] is True
    check_blocks(widget["ui"], load_manifest(built["template"]).actions)
    assert {"type": "alert", "text": "Greeting count unavailable", "tone": "warning"} in widget["ui"]
    greet = plugin.call("greet", {"name": "Ada"}, AGENT).output
    assert greet["ok"] is True and greet["result"] == {"greeting": "Hello, Ada!", "count": None}


def test_template_logs_a_line(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cms.plugins.hello-world"):
        load("template").call("greet", {"name": "Ada"}, AGENT)
    assert "hello-world@0.1.0: greeted Ada (count 1)" in caplog.messages


# Envelopes ------------------------------------------------------------------------------------

def test_unknown_action_is_an_error_answer(load: Any) -> None:
    output = load("probe").call('no "such" action').output
    assert output == {"ok": False, "error": {"code": "unknown_action",
                                             "message": 'this plugin has no action "no "such" action"'}}


@pytest.mark.parametrize("data", [
    b"not json", b"", b"[]", b'{"abi":2,"action":"echo"}', b'{"abi":1}', b'{"abi":1,"action":""}',
    b'{"abi":1,"action":7}', b'{"abi":1,"action":"echo","params":[]}',
    b'{"abi":1,"action":"echo","context":"x"}', b'{"abi":1,"action":"echo"} trailing',
    b'{"abi":1,"action":"\xff"}', b'{"abi":1,"action":"echo",}',
])
def test_an_input_that_is_not_an_envelope_is_bad_input(load: Any, data: bytes) -> None:
    output = load("probe").call_raw(data).output
    assert output["ok"] is False and output["error"]["code"] == "bad_input"


def test_missing_params_and_context_are_empty_objects(load: Any) -> None:
    assert raw(load("probe"), {"abi": 1, "action": "echo"}) == {"ok": True, "result": {}}
    assert raw(load("probe"), {"abi": 1, "action": "noop", "params": {}}) == {"ok": True}


def test_error_answer_replaces_result_and_ui(load: Any) -> None:
    message = 'Bad "name"\n\tline \\ two \x01 — ✓'
    output = load("probe").call("error", {"code": "bad_name", "message": message}).output
    assert output == {"ok": False, "error": {"code": "bad_name", "message": message}}


# JSON -----------------------------------------------------------------------------------------

TRICKY_STRINGS = [
    "", "plain", 'quote " and backslash \\ and slash /', "\b\f\n\r\t", "".join(map(chr, range(32))),
    "\x7f", "é", "Zoë", "日本語", "😀", "a😀b🎉c", "\U0010ffff", "\u2028\u2029", "\ufeff", "\ufffd",
    "\u0000 after nul", "<script>alert(1)</script>", "mixed \u00e9\u20ac\U0001f600\n\"", "x" * 5000,
]
NUMBERS = [0, 1, -1, 42, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, -(2**63), 10**19, 2**64,
           0.1, -2.5, 0.30000000000000004, 3.141592653589793, 1e300, -1e-300, 5e-324,
           2.2250738585072014e-308, 1.7976931348623157e308, 123456.789, 1e-7, 1e21, 1.5e17,
           6.02214076e23, 0.5, 1e16, 9007199254740993.0]


def test_strings_round_trip_through_parser_and_writer(load: Any) -> None:
    plugin = load("probe")
    params = {"strings": TRICKY_STRINGS, "keys": {s: i for i, s in enumerate(TRICKY_STRINGS[:18])}}
    # Once with every non-ASCII character as \u escapes (surrogate pairs included), once raw UTF-8.
    assert raw(plugin, {"abi": 1, "action": "echo", "params": params})["result"] == params
    assert plugin.call("echo", params).output["result"] == params


def test_numbers_and_structures_round_trip(load: Any) -> None:
    params = {"numbers": NUMBERS, "nested": {"a": [[], {}, [[[{"b": None}]]]], "t": True, "f": False},
              "empty": {}, "list": [None, True, False, "", 0, -0.0, [1, [2, [3]]]]}
    result = load("probe").call("echo", params).output["result"]
    assert result == params
    for sent, got in zip(NUMBERS, result["numbers"]):
        # Integers stay integers within 64 bits (beyond, they become doubles); integral doubles
        # below 1e17 are written as integers.
        assert got == sent and (type(got) is type(sent) or abs(sent) >= 2**63
                                or float(sent).is_integer()), (sent, got)


def test_doubles_are_written_in_their_shortest_form(load: Any) -> None:
    shown = {0.1: "0.1", 1e300: "1e300", 5e-324: "5e-324", 1e23: "1e23", -2.5e-8: "-2.5e-8",
             0.30000000000000004: "0.30000000000000004", 1e-7: "1e-7", 123456.789: "123456.789",
             1.5e17: "1.5e17", 0.001: "0.001", 1e-5: "0.00001", 1e16: "10000000000000000",
             2.5: "2.5", -0.75: "-0.75", 1.7976931348623157e308: "1.7976931348623157e308",
             2.2250738585072014e-308: "2.2250738585072014e-308", 12345678.125: "12345678.125"}
    assert load("probe").call("show", {"n": list(shown)}).output["result"] == list(shown.values())


def test_random_doubles_round_trip_exactly(load: Any) -> None:
    rng = random.Random(7)
    values = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(1500)]
    values += [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(52)))[0] for _ in range(500)]
    values = [v for v in values if math.isfinite(v)]
    plugin = load("probe")
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        assert plugin.call("echo", {"n": chunk}).output["result"]["n"] == chunk


def test_escapes_decode_to_utf8(load: Any) -> None:
    plugin = load("probe")
    data = (b'{"abi":1,"action":"echo","params":{"s":"\\ud83d\\ude00 \\u00e9\\u20AC \\/ \\u0041",'
            b'"lone":"\\ud800 x \\udc00 \\ud800\\u0041","raw":"\xf0\x9f\x98\x80"}}')
    assert plugin.call_raw(data).output["result"] == {
        "s": "😀 é€ / A", "lone": "\ufffd x \ufffd \ufffdA", "raw": "😀"}


@pytest.mark.parametrize(("text", "value"), [
    ('{"a": [1, 2.5, "x", true, false, null]}', {"a": [1, 2.5, "x", True, False, None]}),
    (' \n\t[ ] ', []), ('"\\ud83d\\ude00"', "😀"), ("-0", 0), ("1E+2", 100.0), ("1e-2", 0.01),
    ("[" * 32 + "]" * 32, json.loads("[" * 32 + "]" * 32)),  # CMS_MAX_DEPTH
])
def test_parse_accepts_json(load: Any, text: str, value: Any) -> None:
    assert load("probe").call("parse", {"text": text}).output["result"] == {"valid": True,
                                                                           "value": value}


@pytest.mark.parametrize("text", [
    "", " ", "{", "[1,]", "[1 2]", '{"a" 1}', '{"a":1,}', "{a:1}", "01", "1.", ".5", "-", "1e",
    "+1", "tru", "nul", "NaN", "Infinity", '"\\x"', '"\\u12"', '"\\u12G4"', '"a\u0001b"', '"open',
    "[1] x", "[" * 33 + "]" * 33, "'single'", "\u00a0[]",
])
def test_parse_rejects_what_is_not_json(load: Any, text: str) -> None:
    assert load("probe").call("parse", {"text": text}).output["result"] == {"valid": False, "value": None}


def test_parse_rejects_invalid_utf8(load: Any) -> None:
    # Invalid UTF-8 (bad bytes, overlong, surrogate, above U+10FFFF, cut short) in the envelope.
    for bad in (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"):
        data = b'{"abi":1,"action":"echo","params":{"s":"' + bad + b'"}}'
        assert load("probe").call_raw(data).output["error"]["code"] == "bad_input"


def test_accessors_give_defaults_on_type_mismatch(load: Any) -> None:
    params = {"num": 42, "str": "text", "big": 2**63 - 1, "whole": 2.0, "frac": 2.5, "flag": True,
              "nothing": None, "arr": [10, "twenty", None], "obj": {"inner": {"name": "deep"}}}
    result = load("probe").call("access", params, AGENT).output["result"]
    assert result == {
        "str_of_num": "default", "int_of_str": -1, "int_of_int": 42, "int_of_big": 2**63 - 1,
        "int_of_whole": 2, "int_of_frac": -1, "num_of_int": 42, "num_of_str": -1, "bool": True,
        "bool_of_null": True, "len_arr": 3, "len_str": 4, "len_num": 0, "at_1": "twenty",
        "at_out_of_range": True, "at_on_object": True, "get_on_array": True, "null_is_null": True,
        "missing_is_null": True, "str_is_null": False, "nested": "deep", "missing_chain": "?",
        "agent": "Dana Agent", "action": "access",
        "types": {"num": 3, "str": 4, "big": 3, "whole": 3, "frac": 3, "flag": 2, "nothing": 1,
                  "arr": 5, "obj": 6},
    }


def test_formatting_and_string_helpers(load: Any) -> None:
    result = load("probe").call("fmt").output["result"]
    assert result == {
        "fmt": "str|-42|7|-1234567|-9223372036854775808|4000000000|4294967295|ff|12|z|%|abc|0.5|(null).",
        "trim": "padded", "trim_blank": "", "streq": True, "aligned": True, "zeroed": True,
        "dup": "abc", "built_len": 1006, "built_tail": "cdefghijkl<1000>",
    }


# UI -------------------------------------------------------------------------------------------

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
    plugin = load("probe")
    with pytest.raises(PluginFault) as misuse:
        plugin.call("misuse")
    assert misuse.value.kind == "trap"
    assert misuse.value.message == "plugin aborted: cms_ui_pair outside cms_ui_key_value"
    with pytest.raises(PluginFault) as deep:
        plugin.call("deep")
    assert deep.value.message == "plugin aborted: JSON writer: nested deeper than 64"


# Failing cleanly ------------------------------------------------------------------------------

def test_cms_fail_is_a_trap_with_the_message(load: Any) -> None:
    with pytest.raises(PluginFault) as fault:
        load("probe").call("fail", {"message": 'broken "thing"\n — ✓'})
    assert fault.value.kind == "trap"
    assert fault.value.message == 'plugin aborted: broken "thing"\n — ✓'
    with pytest.raises(PluginFault) as long:
        load("probe").call("fail", {"message": "é" * 1000})
    assert long.value.kind == "trap" and long.value.message.startswith("plugin aborted: ééé")


def test_running_out_of_memory_is_memory_limit(load: Any) -> None:
    plugin = load("oom", grants=set(), limits=Limits(memory_bytes=2 * 2**20))
    with pytest.raises(PluginFault) as fault:
        plugin.call("hog")
    assert fault.value.kind == "memory_limit"
    assert fault.value.message == "plugin aborted: out of memory allocating 65536 bytes"
    # One allocation that cannot fit, with memory far from the cap: a trap there would be
    # classified "trap"; the library's abort makes it memory_limit.
    with pytest.raises(PluginFault) as big:
        plugin.call("hog", {"chunk": 8 * 2**20})
    assert big.value.kind == "memory_limit"
    assert big.value.message == "plugin aborted: out of memory allocating 8388608 bytes"
    assert big.value.stats is not None and big.value.stats.peak_memory_bytes <= 256 * 1024


def test_the_oom_fixture_manifest_and_vectors(built: dict[str, Any], tmp_path: Path) -> None:
    from plugin_sdk.testing import Harness
    from plugin_sdk.vectors import load_vectors

    manifest = load_manifest(FIXTURES / "oom")
    assert manifest.id == "oom" and manifest.capabilities == frozenset()
    assert manifest.limits == {"memory_mb": 2}
    harness = Harness(built["wasm"]["oom"], manifest, tmp_path)
    try:
        for vector in load_vectors(FIXTURES / "oom", manifest):
            outcome = harness.run_vector(vector)
            assert outcome.problem is None and outcome.fault == "memory_limit", vector.name
    finally:
        harness.close()


# An allocator that never checks memory.grow (plain C, no SDK library) ----------------------------

@pytest.mark.parametrize(("action", "symptom"), [
    ("record", "memory_out_of_bounds: out of bounds memory access"),
    ("transcript", "output is not UTF-8 (byte 32)"),
])
def test_a_fault_after_a_refused_grow_is_named_as_memory(load: Any, action: str,
                                                         symptom: str) -> None:
    plugin = load("unchecked", grants=set(), limits=Limits(memory_bytes=4 * 2**20))
    with pytest.raises(PluginFault) as fault:
        plugin.call(action)
    assert fault.value.kind == "memory_limit"
    assert fault.value.message == ("memory limit reached (a grow to 8.1 MiB was refused); "
                                   f"then: {symptom}")
    # Far from the cap when it failed: the memory size alone would not have explained it.
    assert fault.value.stats is not None and fault.value.stats.peak_memory_bytes <= 2**20
    assert plugin.call("small").output["result"] == {"small": True}


def test_without_the_grow_watch_the_same_faults_point_elsewhere(
        built: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cms.runtime import growwatch

    monkeypatch.setattr(growwatch, "instrument", lambda wasm: wasm)
    runtime = Runtime(RuntimeConfig(artifact_dir=tmp_path / "plain", compile_missing=True))
    try:
        plugin = runtime.load(built["wasm"]["unchecked"], plugin_id="unchecked", version="0.1.0",
                              limits=Limits(memory_bytes=4 * 2**20))
        kinds = []
        for action in ("record", "transcript"):
            with pytest.raises(PluginFault) as fault:
                plugin.call(action)
            kinds.append(fault.value.kind)
        assert kinds == ["trap", "invalid_output"]
    finally:
        runtime.close()


def test_the_unchecked_fixture_vectors_and_gate(built: dict[str, Any], tmp_path: Path) -> None:
    from cms.plugins.lifecycle import run_gate
    from plugin_sdk.testing import Harness
    from plugin_sdk.vectors import load_vectors

    manifest = load_manifest(FIXTURES / "unchecked")
    harness = Harness(built["wasm"]["unchecked"], manifest, tmp_path / "harness")
    try:
        outcomes = [harness.run_vector(v) for v in load_vectors(FIXTURES / "unchecked", manifest)]
    finally:
        harness.close()
    assert [(o.problem, o.fault) for o in outcomes] == [(None, "memory_limit")] * 2 + [(None, None)]
    # The staging gate names the memory when a vector expected an answer.
    expect_ok = json.dumps([{"name": "records", "action": "record", "expect": {"ok": True}}])
    status, report = run_gate(manifest, built["wasm"]["unchecked"], {"v.json": expect_ok}, None,
                              Limits(memory_bytes=128 * 2**20), tmp_path / "gate", calls=2)
    assert status == "failed"
    assert report["problems"][0] == (
        "v.json: records: unexpected fault memory_limit: memory limit reached (a grow to 8.1 MiB "
        "was refused); then: memory_out_of_bounds: out of bounds memory access")


# Host calls -----------------------------------------------------------------------------------

def test_kv_helpers(load: Any, host: Host) -> None:
    result = load("probe").call("kv").output["result"]
    assert result == {"set": True, "set_default_scope": True, "get": {"x": [1, "two"]},
                      "other_scope": None, "default_scope": 2, "list": ["a"], "delete": True,
                      "gone": True, "host_error": None}
    assert host.kv == {("agent", "b"): 2}


def test_kv_unavailable_is_an_answer_the_plugin_sees(load: Any, host: Host) -> None:
    host.kv_down = True
    result = load("probe").call("kv").output["result"]
    assert result == {"set": False, "set_default_scope": False, "get": None, "other_scope": None,
                      "default_scope": None, "list": None, "delete": False, "gone": False,
                      "host_error": "unavailable"}


def test_host_call_answers(load: Any) -> None:
    plugin = load("probe")
    ok = plugin.call("call", {"op": "test.echo", "args": {"q": "ü\"x"}}).output["result"]
    assert ok == {"answer": {"ok": True, "result": {"args": {"q": "ü\"x"}}}, "ok": True,
                  "error": None, "message": "", "host_error": None, "result": {"args": {"q": "ü\"x"}}}
    assert plugin.call("call", {"op": "test.echo"}).output["result"]["result"] == {"args": {}}
    down = plugin.call("call", {"op": "test.down"}).output["result"]
    assert down["ok"] is False and down["error"] == down["host_error"] == "unavailable"
    assert down["message"] == "the service is down" and down["result"] is None
    unknown = plugin.call("call", {"op": "no.such"}).output["result"]
    assert unknown["error"] == "unknown_op"


def test_host_call_without_capability_is_a_fault(load: Any) -> None:
    with pytest.raises(PluginFault) as fault:
        load("probe", grants={"log"}).call("call", {"op": "test.echo"})
    assert fault.value.kind == "capability_denied"


def test_log_lines(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="cms.plugins.probe"):
        load("probe").call("log", {"who": "Ada"})
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "cms.plugins.probe"]
    assert lines == [("DEBUG", "probe@0.1.0: debug line"), ("WARNING", "probe@0.1.0: warning line"),
                     ("INFO", "probe@0.1.0: 5 apples for Ada")]


# The leaky fixture ----------------------------------------------------------------------------

def test_leaky_fixture_grows_per_call_with_a_shared_kv(load: Any, host: Host) -> None:
    manifest = load_manifest(FIXTURES / "leaky")
    assert manifest.id == "leaky" and manifest.capabilities == frozenset({"kv"})
    plugin = load("leaky", grants={"kv"})
    memory, fuel = [], []
    for n in range(1, 61):
        result = plugin.call("remember", {}, AGENT)
        assert result.output == {"ok": True, "result": {"entries": n, "transcript_bytes": 2048 * n}}
        memory.append(result.stats.peak_memory_bytes)
        fuel.append(result.stats.fuel_consumed)
    assert len(host.kv[("agent", "history")]) == 60
    assert memory == sorted(memory) and memory[29] > memory[0] and memory[-1] > memory[29], memory
    assert fuel == sorted(fuel) and fuel[-1] > 5 * fuel[0], fuel

    from plugin_sdk.testing import MIN_MEMORY_GROWTH, leak_signal
    assert leak_signal(memory, MIN_MEMORY_GROWTH).leaking and leak_signal(fuel).leaking


def test_probe_call_overhead_is_small(load: Any) -> None:
    stats = load("probe").call("noop").stats
    assert stats.fuel_consumed < 20_000, stats
    assert stats.peak_memory_bytes <= 2 * abi.WASM_PAGE_BYTES, stats
