"""The Rust softphone twin (plugins_src/softphone-rust) answers exactly as the C softphone does:
every softphone vector of the ported actions runs through both modules, built from their current
sources, with the same host answers, and the whole answers and the host calls must be equal."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from cms.runtime import PluginFault
from plugin_sdk import toolchain_rust
from plugin_sdk.manifest import Manifest, load_manifest
from plugin_sdk.testing import Chaos, Harness, KvStore, Script
from plugin_sdk.toolchain import Lang, compile_module
from plugin_sdk.vectors import Vector, load_vectors
from tests.conftest import require

PLUGINS = Path(__file__).resolve().parents[2] / "plugins_src"
C_FOLDER, RUST_FOLDER = PLUGINS / "softphone", PLUGINS / "softphone-rust"
PORTED = ("toolbar", "client_panel", "dial", "hangup", "wrap_up", "schedule_callback")


@dataclass
class RecordingScript(Script):
    """A Script that also records each host call's args, in order."""

    args: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def answer(self, op: str, args: dict[str, Any]) -> Any:
        self.args.append((op, args))
        return super().answer(op, args)


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Harness]]:
    """A Harness for the C softphone and one for the Rust twin, both compiled for this file."""
    require(toolchain_rust.available(), f"cargo with the wasm32 std ({toolchain_rust.INSTALL})")
    out = tmp_path_factory.mktemp("twin")
    folders: dict[Lang, Path] = {"c": C_FOLDER, "rust": RUST_FOLDER}
    manifests: dict[Lang, Manifest] = {lang: load_manifest(folder) for lang, folder in folders.items()}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {lang: pool.submit(compile_module, lang, folders[lang] / str(manifests[lang].build_source),
                                     out / f"{lang}.wasm", folders[lang]) for lang in folders}
        wasm = {lang: future.result() for lang, future in futures.items()}
    built: dict[str, Harness] = {lang: Harness(wasm[lang], manifests[lang], out / f"artifacts-{lang}") for lang in folders}
    yield built
    for harness in built.values():
        harness.close()


def ported_vectors() -> list[Vector]:
    manifest = load_manifest(C_FOLDER)
    return [v for v in load_vectors(C_FOLDER, manifest) if v.action in PORTED]


def run(harness: Harness, vector: Vector, chaos: Chaos | None = None) -> tuple[Any, list[Any]]:
    """(the whole output, or the fault's kind and message; the host calls with their args)."""
    script = RecordingScript(vector.host, KvStore(), chaos)
    try:
        output: Any = harness.call(vector.action, vector.params, vector.context, script).output
    except PluginFault as fault:
        output = ("fault", str(fault.kind), fault.message)
    return output, script.args


def test_the_twin_carries_the_softphone_vectors_of_its_actions() -> None:
    twin = load_manifest(RUST_FOLDER)
    assert sorted(twin.actions) == sorted(PORTED)
    assert twin.capabilities == load_manifest(C_FOLDER).capabilities
    for action in PORTED:
        name = f"{action}.json"
        assert (RUST_FOLDER / "tests" / name).read_bytes() == (C_FOLDER / "tests" / name).read_bytes(), name
    assert sorted(p.name for p in (RUST_FOLDER / "tests").glob("*.json")) == sorted(
        f"{action}.json" for action in PORTED)


@pytest.mark.parametrize("vector", ported_vectors(), ids=lambda v: f"{v.action}: {v.name}")
def test_the_twin_answers_as_the_c_softphone(harnesses: dict[str, Harness], vector: Vector) -> None:
    c_output, c_calls = run(harnesses["c"], vector)
    rust_output, rust_calls = run(harnesses["rust"], vector)
    assert rust_output == c_output
    assert rust_calls == c_calls
    assert harnesses["rust"].run_vector(vector).problem is None


@pytest.mark.parametrize("chaos", ["fail", "timeout"])
def test_the_twin_answers_as_the_c_softphone_under_chaos(harnesses: dict[str, Harness],
                                                         chaos: Chaos) -> None:
    for vector in ported_vectors():
        c_output, c_calls = run(harnesses["c"], vector, chaos)
        assert run(harnesses["rust"], vector, chaos) == (c_output, c_calls), vector.name
        assert isinstance(c_output, dict), (vector.name, c_output)  # an answer, not a fault
