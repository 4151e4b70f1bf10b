"""The bundled plugins: the committed modules in wasm/ are exactly what their sources in
plugins_src/ build to, and each passes its own vectors, chaos and soak in the production sandbox.
The faulty variants (plugins_src/faulty/) fail the way they are meant to."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugin_sdk.manifest import load_manifest
from plugin_sdk.project import build, check_module_against
from plugin_sdk.testing import Harness
from plugin_sdk.toolchain import zig_available
from plugin_sdk.vectors import load_vectors
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
GOOD = sorted(p.parent.name for p in (ROOT / "plugins_src").glob("*/plugin.toml"))
FAULTY = sorted(p.parent.name for p in (ROOT / "plugins_src" / "faulty").glob("*/plugin.toml"))


def test_the_three_plugins_and_their_faulty_variants_exist() -> None:
    assert {"softphone", "mail", "terminal"} <= set(GOOD)
    assert {"softphone-leaky", "mail-spinning", "terminal-failing"} <= set(FAULTY)


@pytest.mark.parametrize("name", GOOD + [f"faulty/{n}" for n in FAULTY])
def test_committed_modules_are_what_the_sources_build_to(name: str) -> None:
    require(zig_available(), "the ziglang package (pip install 'cms[sdk]')")
    result = build(ROOT / "plugins_src" / name, ROOT / "wasm" / name, verify=True)
    assert result.unchanged is True, (f"wasm/{name} differs from a fresh build of plugins_src/{name}: "
                                      f"run cms-plugin build plugins_src/{name} --out wasm/{name}")
    built = load_manifest(ROOT / "wasm" / name)
    assert built.module_sha256 == result.sha256


@pytest.mark.parametrize("name", GOOD)
def test_each_plugin_passes_check_vectors_chaos_and_soak(name: str, tmp_path: Path) -> None:
    folder = ROOT / "wasm" / name
    manifest = load_manifest(folder)
    wasm = (folder / (manifest.module_file or "")).read_bytes()
    report = check_module_against(manifest, wasm)
    assert report.ok, report.problems
    vectors = load_vectors(folder, manifest)
    assert len(vectors) >= 5
    harness = Harness(wasm, manifest, tmp_path)
    try:
        for vector in vectors:
            outcome = harness.run_vector(vector)
            assert outcome.passed, f"{vector.label}: {outcome.problem}"
            for mode in ("fail", "timeout"):
                if vector.expect.fault is None:
                    chaos = harness.run_vector(vector, mode)
                    assert chaos.passed, f"chaos {mode}: {vector.label}: {chaos.problem}"
        for soak in harness.soak(vectors, 1_000):
            assert soak.problem is None, f"{name} {soak.action}: {soak.problem}"
    finally:
        harness.close()


@pytest.mark.parametrize("name", FAULTY)
def test_faulty_variants_fault_as_designed(name: str, tmp_path: Path) -> None:
    folder = ROOT / "wasm" / "faulty" / name
    manifest = load_manifest(folder)
    assert "-" in manifest.version  # a pre-release of the real plugin, e.g. 1.1.0-leaky
    wasm = (folder / (manifest.module_file or "")).read_bytes()
    harness = Harness(wasm, manifest, tmp_path)
    try:
        vectors = load_vectors(folder, manifest)
        for vector in vectors:
            outcome = harness.run_vector(vector)
            assert outcome.passed, f"{vector.label}: {outcome.problem}"
        if name.endswith("-leaky"):
            soaks = harness.soak(vectors, 300)
            assert any(s.problem and (s.leaking or "memory_limit" in s.problem) for s in soaks), \
                [s.problem for s in soaks]
        else:
            assert any(v.expect.fault for v in vectors)
    finally:
        harness.close()
