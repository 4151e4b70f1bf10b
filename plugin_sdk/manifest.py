"""The plugin manifest, `plugin.toml`: its format, defined once, read by the SDK and the host.

`load_manifest(path)` / `parse_manifest(text, source)` return a `Manifest` or raise
`ManifestError`, whose message names the file, the field and what was expected. docs/plugin-authoring.md
has an annotated example.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from plugin_sdk import abi
from plugin_sdk.capabilities import CAPABILITIES

MANIFEST_NAME = "plugin.toml"
ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: semver.org's own pattern.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
HOST_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: Where a plugin's panels can appear in the agent UI.
SLOTS: Mapping[str, str] = {
    "dashboard.widget": "a card on the agent's dashboard",
    "client.sidebar": "a panel beside a client's record",
    "agent.toolbar": "a compact panel in the toolbar on every page",
    "page": "a full page of its own under /plugins/<id>",
}
PANEL_WIDTHS = ("normal", "wide")
#: Guest languages `cms-plugin build` compiles (plugin_sdk.toolchain).
LANGS = ("zig", "c", "ts", "rust")
#: Absolute bounds of requested limits; the admin caps (cms.runtime.limits) may be lower.
LIMIT_BOUNDS: Mapping[str, tuple[int, int]] = {
    "fuel": (10_000, 1_000_000_000),
    "memory_mb": (1, 128),
    "timeout_ms": (10, 10_000),
}
MAX_MODULE_BYTES = 8 * 1024 * 1024

_TOP = {"id", "name", "version", "abi", "description", "authors", "min_cms_version", "fallback",
        "capabilities", "build", "limits", "panels", "actions", "http", "module", "tests"}


class ManifestError(ValueError):
    """A manifest that does not follow the format. `str()`: 'FILE: FIELD: expected ..., got ...'."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}" if field else f"{source}: {problem}")
        self.source = source
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Action:
    """One action: its name, what it does, and the JSON Schema of its params."""

    name: str
    description: str
    params_schema: dict[str, Any]


@dataclass(frozen=True)
class Panel:
    """A UI extension point the plugin fills by calling `action`."""

    slot: str
    action: str
    title: str
    #: "wide": on the client page the panel sits in a full-width dock (a GDS terminal's 64+
    #: columns) instead of the sidebar; elsewhere it is laid out like any other.
    width: str = "normal"


@dataclass(frozen=True)
class Manifest:
    """A checked manifest. `module_sha256` is None until `cms-plugin build` fills it in."""

    id: str
    name: str
    version: str
    abi: int
    description: str
    authors: tuple[str, ...]
    min_cms_version: str
    fallback: str
    capabilities: frozenset[str]
    actions: Mapping[str, Action]
    panels: tuple[Panel, ...] = ()
    limits: Mapping[str, int] = field(default_factory=dict)
    http_allow: tuple[str, ...] = ()
    build_lang: str | None = None
    build_source: str | None = None
    module_file: str | None = None
    module_sha256: str | None = None
    tests: str = "tests"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def with_module(self, file: str, sha256: str) -> dict[str, Any]:
        """The manifest as a TOML-ready dict with `[module]` set (what `build` writes)."""
        data = dict(self.raw)
        data["module"] = {"file": file, "sha256": sha256}
        data.pop("build", None)  # the built manifest describes the module, not its source
        return data


def load_manifest(path: Path) -> Manifest:
    """Read and check `path` (a plugin.toml, or a folder holding one). Raises ManifestError."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(str(path), "", "no such file (every plugin folder needs a plugin.toml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(path), "", f"cannot be read: {exc}") from None
    return parse_manifest(text, str(path))


def parse_manifest(text: str, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and check manifest text; `source` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(source, "", f"not valid TOML: {exc}") from None
    return _Checker(source, data).manifest()


def version_tuple(version: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a semver string; raises ValueError when it is not semver."""
    match = SEMVER.match(version)
    if not match:
        raise ValueError(f"{version!r} is not a semantic version")
    return int(match[1]), int(match[2]), int(match[3])


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 60 else "a long string"
    return {list: "an array", dict: "a table", float: f"the number {value}"}.get(type(value),
                                                                               type(value).__name__)


class _Checker:
    def __init__(self, source: str, data: dict[str, Any]) -> None:
        self.source = source
        self.data = data

    def fail(self, field: str, expected: str, value: Any = ...) -> ManifestError:
        got = "" if value is ... else f", got {_kind(value)}"
        return ManifestError(self.source, field, f"expected {expected}{got}")

    def req(self, table: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in table:
            raise ManifestError(self.source, where, "missing (this field is required)")
        return table[key]

    def string(self, table: Mapping[str, Any], key: str, where: str, *, pattern: re.Pattern[str] | None = None,
               expected: str = "a string", max_len: int = 200, default: str | None = None) -> str:
        if default is not None and key not in table:
            return default
        value = self.req(table, key, where)
        if not isinstance(value, str) or not value.strip() or len(value) > max_len:
            raise self.fail(where, f"{expected} (1 to {max_len} characters)", value)
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, expected, value)
        return value

    def manifest(self) -> Manifest:
        d = self.data
        for key in d:
            if key not in _TOP:
                raise ManifestError(self.source, key, f"unknown field (known: {', '.join(sorted(_TOP))})")
        ident = self.string(d, "id", "id", pattern=ID_PATTERN,
                            expected="lowercase letters, digits and '-', starting with a letter, 2-32 long")
        version = self.string(d, "version", "version", pattern=SEMVER,
                              expected="a semantic version such as 1.4.0")
        abi_version = self.req(d, "abi", "abi")
        if abi_version != abi.ABI_VERSION or isinstance(abi_version, bool):
            raise self.fail("abi", f"{abi.ABI_VERSION} (the ABI this SDK speaks)", abi_version)
        authors = self.req(d, "authors", "authors")
        if (not isinstance(authors, list) or not authors
                or not all(isinstance(a, str) and a.strip() for a in authors)):
            raise self.fail("authors", 'a non-empty array of names, e.g. ["Ada <ada@example.com>"]',
                            authors)
        capabilities = self.capabilities()
        actions = self.actions()
        lang, source = self.build()
        module_file, sha = self.module()
        return Manifest(
            id=ident,
            name=self.string(d, "name", "name", max_len=60),
            version=version,
            abi=abi_version,
            description=self.string(d, "description", "description", max_len=500),
            authors=tuple(authors),
            min_cms_version=self.string(d, "min_cms_version", "min_cms_version", pattern=SEMVER,
                                        expected="a semantic version such as 0.1.0"),
            fallback=self.string(d, "fallback", "fallback", max_len=200,
                                 expected="the text agents see when the plugin is unavailable"),
            capabilities=capabilities,
            actions=actions,
            panels=self.panels(actions),
            limits=self.limits(),
            http_allow=self.http(capabilities),
            build_lang=lang, build_source=source, module_file=module_file, module_sha256=sha,
            tests=self.string(d, "tests", "tests", default="tests", max_len=100),
            raw=d,
        )

    def capabilities(self) -> frozenset[str]:
        value = self.data.get("capabilities", [])
        if not isinstance(value, list):
            raise self.fail("capabilities", "an array of capability names", value)
        for index, name in enumerate(value):
            if name not in CAPABILITIES:
                raise self.fail(f"capabilities[{index}]", f"one of {', '.join(CAPABILITIES)}", name)
        if len(set(value)) != len(value):
            raise ManifestError(self.source, "capabilities", "lists a capability twice")
        return frozenset(value)

    def actions(self) -> dict[str, Action]:
        import jsonschema

        table = self.req(self.data, "actions", "actions")
        if not isinstance(table, dict) or not table:
            raise self.fail("actions", "at least one [actions.NAME] table", table)
        actions: dict[str, Action] = {}
        for name, spec in table.items():
            where = f"actions.{name}"
            if not ACTION_PATTERN.match(name):
                raise self.fail(where, "an action name of lowercase letters, digits and '_' "
                                "(at most 32), starting with a letter", name)
            if not isinstance(spec, dict):
                raise self.fail(where, "a table", spec)
            unknown = set(spec) - {"description", "params"}
            if unknown:
                raise ManifestError(self.source, f"{where}.{sorted(unknown)[0]}",
                                    "unknown field (known: description, params)")
            schema = spec.get("params", {"type": "object"})
            if not isinstance(schema, dict):
                raise self.fail(f"{where}.params", "a JSON Schema table", schema)
            if schema.get("type", "object") != "object":
                raise self.fail(f"{where}.params.type", '"object" (params are always an object)',
                                schema.get("type"))
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                at = "".join(f".{p}" for p in exc.path)
                raise ManifestError(self.source, f"{where}.params{at}",
                                    f"not a valid JSON Schema: {exc.message}") from None
            description = (self.string(spec, "description", f"{where}.description", max_len=300)
                           if "description" in spec else "")
            actions[name] = Action(name, description, schema)
        return actions

    def panels(self, actions: Mapping[str, Action]) -> tuple[Panel, ...]:
        value = self.data.get("panels", [])
        if not isinstance(value, list):
            raise self.fail("panels", "an array of [[panels]] tables", value)
        panels: list[Panel] = []
        for index, spec in enumerate(value):
            where = f"panels[{index}]"
            if not isinstance(spec, dict):
                raise self.fail(where, "a table", spec)
            slot = self.req(spec, "slot", f"{where}.slot")
            if slot not in SLOTS:
                raise self.fail(f"{where}.slot", f"one of {', '.join(SLOTS)}", slot)
            if any(p.slot == slot for p in panels):
                raise ManifestError(self.source, f"{where}.slot", f"{slot!r} is filled twice")
            action = self.req(spec, "action", f"{where}.action")
            if action not in actions:
                raise self.fail(f"{where}.action", f"one of the actions ({', '.join(actions)})", action)
            unknown = set(spec) - {"slot", "action", "title", "width"}
            if unknown:
                raise ManifestError(self.source, f"{where}.{sorted(unknown)[0]}",
                                    "unknown field (known: action, slot, title, width)")
            width = spec.get("width", "normal")
            if width not in PANEL_WIDTHS:
                raise self.fail(f"{where}.width", f"one of {', '.join(PANEL_WIDTHS)}", width)
            panels.append(Panel(slot, action, self.string(spec, "title", f"{where}.title", max_len=60),
                                width))
        return tuple(panels)

    def limits(self) -> dict[str, int]:
        value = self.data.get("limits", {})
        if not isinstance(value, dict):
            raise self.fail("limits", "a [limits] table", value)
        limits: dict[str, int] = {}
        for key, raw in value.items():
            if key not in LIMIT_BOUNDS:
                raise ManifestError(self.source, f"limits.{key}",
                                    f"unknown limit (known: {', '.join(LIMIT_BOUNDS)})")
            low, high = LIMIT_BOUNDS[key]
            if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
                raise self.fail(f"limits.{key}", f"an integer from {low:,} to {high:,}", raw)
            limits[key] = raw
        return limits

    def http(self, capabilities: frozenset[str]) -> tuple[str, ...]:
        table = self.data.get("http")
        if table is None:
            if "http" in capabilities:
                raise ManifestError(self.source, "http.allow", "missing: capability \"http\" needs "
                                    "[http] allow = [\"host.example.com\", ...]")
            return ()
        if "http" not in capabilities:
            raise ManifestError(self.source, "http", 'only allowed with capability "http"')
        if not isinstance(table, dict) or set(table) != {"allow"}:
            raise self.fail("http", "a table with exactly one field, allow", table)
        hosts = table["allow"]
        if not isinstance(hosts, list) or not hosts:
            raise self.fail("http.allow", "a non-empty array of host names", hosts)
        for index, host in enumerate(hosts):
            if not isinstance(host, str) or not HOST_PATTERN.match(host):
                raise self.fail(f"http.allow[{index}]", "a lowercase host name such as api.example.com "
                                "(no scheme, port, path or wildcard)", host)
        return tuple(hosts)

    def build(self) -> tuple[str | None, str | None]:
        table = self.data.get("build")
        if table is None:
            return None, None
        if not isinstance(table, dict):
            raise self.fail("build", "a [build] table", table)
        lang = self.req(table, "lang", "build.lang")
        if lang not in LANGS:
            raise self.fail("build.lang", f"one of {', '.join(LANGS)}", lang)
        source = self.string(table, "source", "build.source", max_len=200)
        if source.startswith("/") or ".." in Path(source).parts:
            raise self.fail("build.source", "a path inside the plugin folder", source)
        return lang, source

    def module(self) -> tuple[str | None, str | None]:
        table = self.data.get("module")
        if table is None:
            return None, None
        if not isinstance(table, dict):
            raise self.fail("module", "a [module] table", table)
        file = self.string(table, "file", "module.file", max_len=100)
        if "/" in file or "\\" in file or not file.endswith(".wasm"):
            raise self.fail("module.file", "a file name ending in .wasm, next to plugin.toml", file)
        sha = self.req(table, "sha256", "module.sha256")
        if not isinstance(sha, str) or not SHA256.match(sha):
            raise self.fail("module.sha256", "64 lowercase hex digits (cms-plugin build fills it in)", sha)
        return file, sha
