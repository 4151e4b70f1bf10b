"""Compiled artifacts: compiled once, verified before every deserialize, rebuilt or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from cms.runtime import ArtifactError, EngineSettings, Runtime
from cms.runtime import growwatch
from cms.runtime.artifacts import sha256_hex
from tests.runtime import guests
from tests.runtime.conftest import make_runtime


def server_runtime(tmp_path: Path, **kwargs: object) -> Runtime:
    """A runtime as the web app runs it: it never compiles on load."""
    return make_runtime(tmp_path, compile_missing=False, **kwargs)


def test_compile_writes_an_artifact_keyed_by_wasm_and_engine(tmp_path: Path) -> None:
    runtime = server_runtime(tmp_path)
    wasm = guests.module()
    path = runtime.compile(wasm)
    assert path.name == f"{sha256_hex(wasm)}-{runtime.config.engine.fingerprint()}-g{growwatch.VERSION}.cwasm"
    assert Path(f"{path}.sha256").read_text() == sha256_hex(path.read_bytes())
    assert runtime.load(wasm, plugin_id="p", version="1").call("x").ok


def test_a_missing_artifact_is_refused_on_the_server(tmp_path: Path) -> None:
    runtime = server_runtime(tmp_path)
    with pytest.raises(ArtifactError, match="is missing; rebuild it with `cms-plugin build`"):
        runtime.load(guests.module(), plugin_id="p", version="1")


def test_a_corrupt_artifact_is_refused_not_loaded(tmp_path: Path) -> None:
    runtime = server_runtime(tmp_path)
    wasm = guests.module()
    path = runtime.compile(wasm)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"is corrupt \(checksum mismatch\)"):
        runtime.load(wasm, plugin_id="p", version="1")


def test_a_corrupt_artifact_is_rebuilt_where_compiling_is_allowed(tmp_path: Path) -> None:
    wasm = guests.module()
    path = server_runtime(tmp_path).compile(wasm)
    path.write_bytes(b"garbage")
    builder = make_runtime(tmp_path, compile_missing=True)
    assert builder.load(wasm, plugin_id="p", version="1").call("x").ok
    assert Path(f"{path}.sha256").read_text() == sha256_hex(path.read_bytes())


def test_an_artifact_with_a_valid_checksum_from_another_engine_is_refused(tmp_path: Path) -> None:
    """Stale: right checksum, wrong engine (here: bytes of another module under this key)."""
    runtime = server_runtime(tmp_path)
    wasm = guests.module()
    path = runtime.compile(wasm)
    path.write_bytes(b"\x7fELF not an artifact at all")
    Path(f"{path}.sha256").write_text(sha256_hex(path.read_bytes()))
    with pytest.raises(ArtifactError, match="does not fit this engine"):
        runtime.load(wasm, plugin_id="p", version="1")


def test_other_engine_settings_use_other_artifacts(tmp_path: Path) -> None:
    wasm = guests.module()
    first = server_runtime(tmp_path).compile(wasm)
    other = server_runtime(tmp_path, engine=EngineSettings(max_wasm_stack=256 * 1024))
    with pytest.raises(ArtifactError, match="is missing"):
        other.load(wasm, plugin_id="p", version="1")
    assert other.compile(wasm) != first
