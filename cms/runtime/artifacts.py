"""Compiled artifacts: a module is compiled once, serialized, and only deserialized afterwards.

An artifact is named by the wasm's sha256 and the engine fingerprint (wasmtime version and
settings), and carries a sha256 of its own bytes in a sidecar file. Deserializing arbitrary bytes
is unsafe in wasmtime, so the checksum is verified before every deserialize: a corrupt artifact is
detected and rebuilt (where compiling is allowed) or refused, never loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import wasmtime

from cms.runtime import growwatch
from cms.runtime.results import ArtifactError, one_line

logger = logging.getLogger(__name__)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """A folder of `<wasm sha256>-<engine fingerprint>.cwasm` files with `.sha256` sidecars."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint

    def path_for(self, wasm_sha256: str) -> Path:
        return self.folder / f"{wasm_sha256}-{self.fingerprint}-g{growwatch.VERSION}.cwasm"

    def compile(self, engine: wasmtime.Engine, wasm: bytes) -> Path:
        """Validate and compile `wasm`, write its artifact atomically, return the artifact's path.

        The module compiled is `wasm` with its grows watched (cms.runtime.growwatch).
        Raises wasmtime.WasmtimeError when the bytes are not a valid module.
        """
        module = wasmtime.Module(engine, growwatch.instrument(wasm))
        data = bytes(module.serialize())
        path = self.path_for(sha256_hex(wasm))
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, data)
        _write_atomic(_sidecar(path), sha256_hex(data).encode())
        return path

    def load(self, engine: wasmtime.Engine, wasm: bytes, *, compile_missing: bool) -> wasmtime.Module:
        """The compiled module for `wasm`, deserialized from its verified artifact.

        A missing, stale or corrupt artifact is rebuilt when `compile_missing` is true and refused
        with ArtifactError otherwise.
        """
        path = self.path_for(sha256_hex(wasm))
        problem = self._problem(path)
        if problem is None:
            try:
                return wasmtime.Module.deserialize_file(engine, str(path))
            except wasmtime.WasmtimeError as exc:  # e.g. written by an incompatible engine
                problem = f"does not fit this engine ({one_line(exc)})"
        if not compile_missing:
            raise ArtifactError(f"compiled artifact {path.name} {problem}; rebuild it with "
                                "`cms-plugin build` or republish the plugin")
        log = logger.info if problem == "is missing" else logger.warning
        log("artifact %s %s: compiling it again", path.name, problem)
        path = self.compile(engine, wasm)
        return wasmtime.Module.deserialize_file(engine, str(path))

    def _problem(self, path: Path) -> str | None:
        """Why the artifact at `path` cannot be used, or None when its checksum matches."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return "is missing"
        try:
            expected = _sidecar(path).read_text().strip()
        except FileNotFoundError:
            return "has no checksum file"
        if sha256_hex(data) != expected:
            return "is corrupt (checksum mismatch)"
        return None


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
