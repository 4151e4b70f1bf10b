"""Test vectors: a plugin's own tests, as data. Format defined once, here.

A vector file is `tests/*.json` in the plugin folder: one object or a list of objects::

    {"name": "greets by name", "action": "greet", "params": {"name": "Ada"},
     "context": {"agent": {"id": 7}},
     "grants": ["kv"],                                  # optional; default: the manifest's
     "host": {"clients.get": {"ok": true, "result": {...}},      # answer to every call
              "kv.get": [{"ok": true, "result": {"value": 1}}]}, # or answers in order
     "expect": {"ok": true, "result": {...}, "ui": [...]}}

`expect` is one of ``{"ok": true, "result"?: ..., "ui"?: [...]}``, ``{"ok": false, "error"?: CODE}``
or ``{"fault": KIND}``. `result` and `ui` match as subsets: expected keys must be present and equal,
lists must have the same length. kv ops without a canned answer use an in-memory store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from plugin_sdk.abi import FaultKind
from plugin_sdk.capabilities import OPS
from plugin_sdk.manifest import Manifest

_KEYS = {"name", "action", "params", "context", "grants", "host", "expect"}
_EXPECT_KEYS = {"ok", "result", "ui", "error", "fault"}


class VectorError(ValueError):
    """A vector file that does not follow the format; `str()` names the file, vector and field."""


@dataclass(frozen=True)
class Expect:
    """What a vector expects: an ok output (with optional subsets), an error code, or a fault."""

    ok: bool | None = None
    result: Any = None
    has_result: bool = False
    ui: list[Any] | None = None
    error: str | None = None
    fault: FaultKind | None = None


@dataclass(frozen=True)
class Vector:
    """One test vector of a plugin."""

    name: str
    file: str
    action: str
    params: Mapping[str, Any]
    context: Mapping[str, Any]
    grants: frozenset[str] | None
    host: Mapping[str, list[dict[str, Any]]]
    expect: Expect
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.file}: {self.name}"


def load_vectors(folder: Path, manifest: Manifest) -> list[Vector]:
    """Every vector in `folder/<manifest.tests>/*.json`, in file order. Raises VectorError."""
    directory = Path(folder) / manifest.tests
    vectors: list[Vector] = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        vectors.extend(parse_vectors(path.read_text(encoding="utf-8"), f"{manifest.tests}/{path.name}",
                                     manifest))
    return vectors


def parse_vectors(text: str, file: str, manifest: Manifest) -> list[Vector]:
    """The vectors in one file's text; `file` names it in errors."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise VectorError(f"{file}: not valid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    return [_vector(item, file, index, manifest) for index, item in enumerate(items)]


def _vector(item: Any, file: str, index: int, manifest: Manifest) -> Vector:
    import jsonschema

    where = f"{file}[{index}]"
    if not isinstance(item, dict):
        raise VectorError(f"{where}: expected an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise VectorError(f"{where}.name: expected a non-empty string")
    where = f"{file}: {name!r}"
    unknown = set(item) - _KEYS
    if unknown:
        raise VectorError(f"{where}: unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(_KEYS))})")
    action = item.get("action")
    if not isinstance(action, str) or action not in manifest.actions:
        raise VectorError(f"{where}: action: expected one of {', '.join(manifest.actions)}, got {action!r}")
    params, context = item.get("params", {}), item.get("context", {})
    if not isinstance(params, dict) or not isinstance(context, dict):
        raise VectorError(f"{where}: params and context must be objects")
    problem = next(iter(jsonschema.Draft202012Validator(
        manifest.actions[action].params_schema).iter_errors(params)), None)
    if problem is not None:
        raise VectorError(f"{where}: params do not match the schema of action {action!r}: "
                          f"{problem.message}")
    grants = item.get("grants")
    if grants is not None and (not isinstance(grants, list)
                               or not all(isinstance(g, str) for g in grants)):
        raise VectorError(f"{where}: grants: expected an array of capability names")
    return Vector(name, file, action, params, context,
                  frozenset(grants) if grants is not None else None,
                  _host(item.get("host", {}), where), _expect(item.get("expect"), where), item)


def _host(value: Any, where: str) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(value, dict):
        raise VectorError(f"{where}: host: expected an object of op -> answer")
    host: dict[str, list[dict[str, Any]]] = {}
    for op, answers in value.items():
        if op not in OPS:
            raise VectorError(f"{where}: host.{op}: no such op (known: {', '.join(OPS)})")
        answers = answers if isinstance(answers, list) else [answers]
        for answer in answers:
            ok = isinstance(answer, dict) and (
                (answer.get("ok") is True and set(answer) <= {"ok", "result"})
                or (answer.get("ok") is False and isinstance(answer.get("error"), dict)
                    and isinstance(answer["error"].get("code"), str)))
            if not ok:
                raise VectorError(f'{where}: host.{op}: expected {{"ok": true, "result": ...}} or '
                                  f'{{"ok": false, "error": {{"code": ..., "message": ...}}}}')
        if not answers:
            raise VectorError(f"{where}: host.{op}: expected at least one answer")
        host[op] = answers
    return host


def _expect(value: Any, where: str) -> Expect:
    if not isinstance(value, dict) or not value:
        raise VectorError(f'{where}: expect: expected an object such as {{"ok": true}}')
    unknown = set(value) - _EXPECT_KEYS
    if unknown:
        raise VectorError(f"{where}: expect.{sorted(unknown)[0]}: unknown field "
                          f"(known: {', '.join(sorted(_EXPECT_KEYS))})")
    if "fault" in value:
        if len(value) != 1 or value["fault"] not in {k.value for k in FaultKind}:
            raise VectorError(f"{where}: expect.fault: expected only a fault kind, one of "
                              f"{', '.join(k.value for k in FaultKind)}")
        return Expect(fault=FaultKind(value["fault"]))
    ok = value.get("ok")
    if not isinstance(ok, bool):
        raise VectorError(f"{where}: expect.ok: expected true or false")
    if ok and "error" in value:
        raise VectorError(f"{where}: expect.error: only with \"ok\": false")
    if not ok and ({"result", "ui"} & set(value)):
        raise VectorError(f"{where}: expect: result and ui only with \"ok\": true")
    ui = value.get("ui")
    if ui is not None and not isinstance(ui, list):
        raise VectorError(f"{where}: expect.ui: expected an array of blocks")
    error = value.get("error")
    if error is not None and not isinstance(error, str):
        raise VectorError(f"{where}: expect.error: expected an error code string")
    return Expect(ok=ok, result=value.get("result"), has_result="result" in value, ui=ui, error=error)


def subset_mismatch(expected: Any, actual: Any, path: str = "") -> str | None:
    """None when `expected` matches `actual` as a subset; else where and how they differ."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path or '.'}: expected an object, got {json.dumps(actual)[:80]}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing"
            found = subset_mismatch(value, actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            got = f"{len(actual)} items" if isinstance(actual, list) else json.dumps(actual)[:80]
            return f"{path or '.'}: expected {len(expected)} items, got {got}"
        for index, (want, have) in enumerate(zip(expected, actual)):
            found = subset_mismatch(want, have, f"{path}[{index}]")
            if found:
                return found
        return None
    if expected != actual or type(expected) is not type(actual) and not (
            isinstance(expected, (int, float)) and isinstance(actual, (int, float))
            and not isinstance(expected, bool) and not isinstance(actual, bool)):
        return f"{path or '.'}: expected {json.dumps(expected)[:80]}, got {json.dumps(actual)[:80]}"
    return None
