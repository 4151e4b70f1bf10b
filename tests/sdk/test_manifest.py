"""plugin.toml: a valid manifest parses into its parts; every kind of mistake names file, field
and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_sdk.manifest import ManifestError, load_manifest, parse_manifest, version_tuple
from tests.sdk.factories import MANIFEST, manifest_text


def test_a_valid_manifest_parses_into_its_parts() -> None:
    m = parse_manifest(MANIFEST)
    assert (m.id, m.name, m.version, m.abi) == ("hello", "Hello", "0.1.0", 1)
    assert m.capabilities == {"log", "kv"}
    assert list(m.actions) == ["widget", "greet"]
    assert m.actions["greet"].params_schema["required"] == ["name"]
    assert [(p.slot, p.action, p.title) for p in m.panels] == [("dashboard.widget", "widget", "Hello")]
    assert m.limits == {"fuel": 5_000_000, "memory_mb": 4, "timeout_ms": 500}
    assert (m.build_lang, m.build_source) == ("zig", "src/main.zig")
    assert m.module_file is None and m.module_sha256 is None
    assert m.fallback == "Hello is unavailable right now."


@pytest.mark.parametrize(("change", "message"), [
    ({'id = "hello"': 'id = "Hello World"'},
     "plugin.toml: id: expected lowercase letters, digits and '-', starting with a letter, 2-32 long, "
     "got the string 'Hello World'"),
    ({'id = "hello"\n': ""}, "plugin.toml: id: missing (this field is required)"),
    ({'version = "0.1.0"': 'version = "1.0"'},
     "plugin.toml: version: expected a semantic version such as 1.4.0, got the string '1.0'"),
    ({"abi = 1": "abi = 2"}, "plugin.toml: abi: expected 1 (the ABI this SDK speaks), got the integer 2"),
    ({'authors = ["Ada <ada@example.com>"]': "authors = []"},
     'plugin.toml: authors: expected a non-empty array of names, e.g. ["Ada <ada@example.com>"], '
     "got an array"),
    ({'capabilities = ["log", "kv"]': 'capabilities = ["log", "telepathy"]'},
     "plugin.toml: capabilities[1]: expected one of log, kv, clients.read, bookings.read, "
     "bookings.write, activity.write, mail.send, inventory.search, http, got the string 'telepathy'"),
    ({"memory_mb = 4": "memory_mb = 512"},
     "plugin.toml: limits.memory_mb: expected an integer from 1 to 128, got the integer 512"),
    ({"memory_mb = 4": "memory_mb = \"4\""},
     "plugin.toml: limits.memory_mb: expected an integer from 1 to 128, got the string '4'"),
    ({"timeout_ms = 500": "cpu = 5"},
     "plugin.toml: limits.cpu: unknown limit (known: fuel, memory_mb, timeout_ms)"),
    ({'slot = "dashboard.widget"': 'slot = "sidebar"'},
     "plugin.toml: panels[0].slot: expected one of dashboard.widget, client.sidebar, agent.toolbar, "
     "page, got the string 'sidebar'"),
    ({'action = "widget"': 'action = "widgte"'},
     "plugin.toml: panels[0].action: expected one of the actions (widget, greet), got the string "
     "'widgte'"),
    ({'type = "string", minLength': 'type = "strng", minLength'},
     "plugin.toml: actions.greet.params.properties.name.type: not a valid JSON Schema: 'strng' is "
     "not valid under any of the given schemas"),
    ({'[actions.greet.params]\ntype = "object"': '[actions.greet.params]\ntype = "array"'},
     'plugin.toml: actions.greet.params.type: expected "object" (params are always an object), '
     "got the string 'array'"),
    ({'lang = "zig"': 'lang = "cobol"'},
     "plugin.toml: build.lang: expected one of zig, c, ts, rust, got the string 'cobol'"),
    ({'source = "src/main.zig"': 'source = "../../etc/passwd"'},
     "plugin.toml: build.source: expected a path inside the plugin folder, got the string "
     "'../../etc/passwd'"),
    ({'[actions.widget]': '[actions.Widget]', 'action = "widget"': 'action = "Widget"'},
     "plugin.toml: actions.Widget: expected an action name of lowercase letters, digits and '_' "
     "(at most 32), starting with a letter, got the string 'Widget'"),
    ({'action = "widget"': 'action = "widget"\nwidth = "huge"'},
     "plugin.toml: panels[0].width: expected one of normal, wide, got the string 'huge'"),
    ({'action = "widget"': 'action = "widget"\nheight = 3'},
     "plugin.toml: panels[0].height: unknown field (known: action, slot, title, width)"),
    ({'fallback = "Hello is unavailable right now."\n': ""},
     "plugin.toml: fallback: missing (this field is required)"),
])
def test_each_mistake_names_the_field_and_what_was_expected(change: dict[str, str], message: str) -> None:
    with pytest.raises(ManifestError) as raised:
        parse_manifest(manifest_text(change))
    assert str(raised.value) == message


def test_http_needs_an_allow_list_and_the_capability() -> None:
    with pytest.raises(ManifestError, match=r'^plugin.toml: http.allow: missing: capability "http" needs'):
        parse_manifest(manifest_text({'"kv"]': '"kv", "http"]'}))
    with pytest.raises(ManifestError, match=r'^plugin.toml: http: only allowed with capability "http"$'):
        parse_manifest(manifest_text(append='\n[http]\nallow = ["api.example.com"]\n'))
    bad = manifest_text({'"kv"]': '"kv", "http"]'}, '\n[http]\nallow = ["https://api.example.com/x"]\n')
    with pytest.raises(ManifestError, match=r"http.allow\[0\]: expected a lowercase host name"):
        parse_manifest(bad)
    good = manifest_text({'"kv"]': '"kv", "http"]'}, '\n[http]\nallow = ["api.example.com"]\n')
    assert parse_manifest(good).http_allow == ("api.example.com",)


def test_unknown_top_level_fields_and_toml_syntax_errors_are_named() -> None:
    with pytest.raises(ManifestError, match=r"^plugin.toml: colour: unknown field \(known: "):
        parse_manifest("colour = 'red'\n" + MANIFEST)
    with pytest.raises(ManifestError, match=r"^plugin.toml: not valid TOML: .*line 1"):
        parse_manifest("id = \n" + MANIFEST)


def test_a_panel_slot_filled_twice_is_refused() -> None:
    twice = manifest_text(append='\n[[panels]]\nslot = "dashboard.widget"\naction = "greet"\ntitle = "x"\n')
    with pytest.raises(ManifestError, match=r"^plugin.toml: panels\[1\].slot: 'dashboard.widget' is filled twice$"):
        parse_manifest(twice)


def test_the_file_name_is_in_the_message(tmp_path: Path) -> None:
    (tmp_path / "plugin.toml").write_text(manifest_text({"abi = 1": "abi = '1'"}))
    with pytest.raises(ManifestError) as raised:
        load_manifest(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'plugin.toml'}: abi: expected 1")
    with pytest.raises(ManifestError, match="no such file"):
        load_manifest(tmp_path / "missing")


def test_the_built_manifest_needs_a_full_sha256() -> None:
    built = manifest_text(append='\n[module]\nfile = "hello.wasm"\nsha256 = "abc"\n')
    with pytest.raises(ManifestError, match=r"module.sha256: expected 64 lowercase hex digits"):
        parse_manifest(built)
    good = manifest_text(append=f'\n[module]\nfile = "hello.wasm"\nsha256 = "{"a" * 64}"\n')
    assert parse_manifest(good).module_sha256 == "a" * 64


def test_version_tuple() -> None:
    assert version_tuple("1.12.3-beta.1+build.5") == (1, 12, 3)
    with pytest.raises(ValueError):
        version_tuple("1.2")
