"""The TypeScript softphone twin (plugins_src/softphone-ts) against the C softphone it ports: every
softphone vector of the ported actions, run through both modules with the same host answers, must
give the same output (the whole envelope) and the same host calls (ops and args, in order), also
when every host op fails or times out."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from cms.runtime import PluginFault
from plugin_sdk.manifest import load_manifest
from plugin_sdk.testing import Chaos, Harness, KvStore, Script
from plugin_sdk.toolchain import compile_module, zig_available
from plugin_sdk.vectors import Vector, load_vectors
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
C_FOLDER = ROOT / "plugins_src" / "softphone"
TS_FOLDER = ROOT / "plugins_src" / "softphone-ts"
PORTED = ("dial", "hangup", "wrap_up", "client_panel", "toolbar", "schedule_callback")


@dataclass
class RecordingScript(Script):
    """The harness's script that also keeps each host call's op and args, in order."""

    requests: list[tuple[str, Any]] = field(default_factory=list)

    def answer(self, op: str, args: dict[str, Any]) -> Any:
        self.requests.append((op, json.loads(json.dumps(args))))
        return super().answer(op, args)


@dataclass(frozen=True)
class Run:
    """What one call gave: the output (or the fault) and the host calls it made."""

    output: dict[str, Any] | None
    fault: tuple[str, str] | None
    requests: list[tuple[str, Any]]
    fuel: int
    wall_ms: float


def run(harness: Harness, vector: Vector, chaos: Chaos | None = None) -> Run:
    script = RecordingScript(vector.host, KvStore(), chaos)
    try:
        result = harness.call(vector.action, vector.params, vector.context, script, vector.grants)
    except PluginFault as fault:
        return Run(None, (str(fault.kind), fault.message), script.requests, 0, 0.0)
    return Run(result.output, None, script.requests, result.stats.fuel_consumed, result.stats.wall_ms)


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Harness]]:
    """Both softphones, each compiled once from the current source."""
    require(zig_available(), "ziglang (the C compiler)")
    require(shutil.which("node") is not None, "Node.js")
    scratch = tmp_path_factory.mktemp("twin")
    # One AssemblyScript install per session, in the cache the CLI tests use too.
    cache = tmp_path_factory.getbasetemp() / "home" / "cache"
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        built = {}
        for lang, folder in (("c", C_FOLDER), ("ts", TS_FOLDER)):
            manifest = load_manifest(folder)
            assert manifest.build_lang == lang and manifest.build_source is not None
            source = folder / manifest.build_source
            wasm = compile_module(lang, source, scratch / f"{lang}.wasm", folder)  # type: ignore[arg-type]
            built[lang] = Harness(wasm, manifest, scratch / f"artifacts-{lang}")
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


def test_the_twin_carries_the_softphone_vectors_of_its_actions() -> None:
    twin = load_manifest(TS_FOLDER)
    assert twin.id == "softphone-ts" and set(twin.actions) == set(PORTED)
    assert twin.capabilities == load_manifest(C_FOLDER).capabilities
    for action in PORTED:
        assert (TS_FOLDER / "tests" / f"{action}.json").read_bytes() == \
            (C_FOLDER / "tests" / f"{action}.json").read_bytes(), action


@pytest.mark.parametrize("vector", ported_vectors(), ids=lambda v: f"{v.action}: {v.name}")
def test_both_softphones_answer_a_vector_alike(harnesses: dict[str, Harness], vector: Vector) -> None:
    c, ts = run(harnesses["c"], vector), run(harnesses["ts"], vector)
    assert c.fault is None and c.output is not None, c.fault
    assert ts.output == c.output
    assert ts.requests == c.requests
    assert ts.fault == c.fault


@pytest.mark.parametrize("chaos", ["fail", "timeout"])
def test_both_softphones_degrade_alike_when_the_host_fails(harnesses: dict[str, Harness],
                                                           chaos: Chaos) -> None:
    for vector in ported_vectors():
        c, ts = run(harnesses["c"], vector, chaos), run(harnesses["ts"], vector, chaos)
        assert c.output is not None, (vector.name, c.fault)
        assert (ts.output, ts.requests) == (c.output, c.requests), vector.name


def test_the_twin_passes_its_own_vectors(harnesses: dict[str, Harness]) -> None:
    harness = harnesses["ts"]
    for vector in load_vectors(TS_FOLDER, harness.manifest):
        assert harness.run_vector(vector).problem is None, vector.name
