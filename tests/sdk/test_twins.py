"""The softphone's twins (plugins_src/twins/softphone-<lang>) answer exactly as the C softphone does:
every softphone vector of the ported actions runs through the C module and each twin, built from
their current sources, with the same host answers; the whole answers and the host calls (ops and
args, in order) must be equal, also when every host op fails or times out."""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from cms.runtime import PluginFault
from plugin_sdk import toolchain_rust
from plugin_sdk.manifest import load_manifest
from plugin_sdk.testing import Chaos, Harness, KvStore, Script
from plugin_sdk.toolchain import compile_module, zig_available
from plugin_sdk.vectors import Vector, load_vectors
from tests.conftest import require

PLUGINS = Path(__file__).resolve().parents[2] / "plugins_src"
C_FOLDER = PLUGINS / "softphone"
PORTED = ("toolbar", "client_panel", "dial", "hangup", "wrap_up", "schedule_callback")
TWINS = ("zig", "ts", "rust")


@dataclass
class RecordingScript(Script):
    """The harness's script that also keeps each host call's op and args, in order."""

    requests: list[tuple[str, Any]] = field(default_factory=list)

    def answer(self, op: str, args: dict[str, Any]) -> Any:
        self.requests.append((op, json.loads(json.dumps(args))))
        return super().answer(op, args)


def run(harness: Harness, vector: Vector, chaos: Chaos | None = None) -> tuple[Any, list[Any]]:
    """(the whole output, or the fault's kind and message; the host calls with their args)."""
    script = RecordingScript(vector.host, KvStore(), chaos)
    try:
        output: Any = harness.call(vector.action, vector.params, vector.context, script,
                                   vector.grants).output
    except PluginFault as fault:
        output = ("fault", str(fault.kind), fault.message)
    return output, script.requests


def folder(lang: str) -> Path:
    return C_FOLDER if lang == "c" else PLUGINS / "twins" / f"softphone-{lang}"


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Harness]]:
    """The C softphone and every twin, each compiled once for this file, at the same time."""
    require(zig_available(), "the ziglang package (pip install 'cms[sdk]')")
    require(shutil.which("node") is not None, "Node.js (for TypeScript: apt-get install nodejs npm)")
    require(toolchain_rust.available(), f"cargo with the wasm32 std ({toolchain_rust.INSTALL})")
    out = tmp_path_factory.mktemp("twins")
    # AssemblyScript is installed once per session, in the cache the CLI tests use too.
    cache, old = tmp_path_factory.getbasetemp() / "home" / "cache", os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    langs = ("c", *TWINS)
    manifests = {lang: load_manifest(folder(lang)) for lang in langs}
    with ThreadPoolExecutor(max_workers=len(langs)) as pool:
        futures = {lang: pool.submit(compile_module, lang,  # type: ignore[arg-type]
                                     folder(lang) / str(manifests[lang].build_source),
                                     out / f"{lang}.wasm", folder(lang)) for lang in langs}
        try:
            built = {lang: Harness(future.result(), manifests[lang], out / f"artifacts-{lang}")
                     for lang, future in futures.items()}
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old
    yield built
    for harness in built.values():
        harness.close()


def ported_vectors() -> list[Vector]:
    vectors = [v for v in load_vectors(C_FOLDER, load_manifest(C_FOLDER)) if v.action in PORTED]
    assert {v.action for v in vectors} == set(PORTED)
    return vectors


@pytest.mark.parametrize("lang", TWINS)
def test_each_twin_carries_the_softphone_vectors_of_its_actions(lang: str) -> None:
    twin = load_manifest(folder(lang))
    assert twin.id == f"softphone-{lang}" and twin.build_lang == lang
    assert sorted(twin.actions) == sorted(PORTED)
    assert twin.capabilities == load_manifest(C_FOLDER).capabilities
    assert sorted(p.name for p in (folder(lang) / "tests").glob("*.json")) == sorted(
        f"{action}.json" for action in PORTED)
    for action in PORTED:
        name = f"{action}.json"
        assert (folder(lang) / "tests" / name).read_bytes() == (C_FOLDER / "tests" / name).read_bytes(), name


@pytest.mark.parametrize("vector", ported_vectors(), ids=lambda v: f"{v.action}: {v.name}")
def test_every_twin_answers_a_vector_as_the_c_softphone(harnesses: dict[str, Harness],
                                                        vector: Vector) -> None:
    c_output, c_calls = run(harnesses["c"], vector)
    assert isinstance(c_output, dict), c_output
    for lang in TWINS:
        assert run(harnesses[lang], vector) == (c_output, c_calls), lang
        assert harnesses[lang].run_vector(vector).problem is None, lang


@pytest.mark.parametrize("chaos", ["fail", "timeout"])
def test_every_twin_degrades_as_the_c_softphone_when_the_host_fails(
        harnesses: dict[str, Harness], chaos: Chaos) -> None:
    for vector in ported_vectors():
        c_output, c_calls = run(harnesses["c"], vector, chaos)
        assert isinstance(c_output, dict), (vector.name, c_output)  # an answer, not a fault
        for lang in TWINS:
            assert run(harnesses[lang], vector, chaos) == (c_output, c_calls), (lang, vector.name)
