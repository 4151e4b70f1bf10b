"""Finding a plugin from a command-line path: a source folder, a built folder or a package."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from plugin_sdk.cli.common import UsageProblem
from plugin_sdk.manifest import MANIFEST_NAME, Manifest, ManifestError, load_manifest
from plugin_sdk.package import SUFFIX, PackageError, read_package
from plugin_sdk.project import DIST, ProjectError, built_manifest_text, source_manifest
from plugin_sdk.vectors import Vector, VectorError, load_vectors, parse_vectors


@dataclass
class Located:
    """A built plugin ready to check or test: manifest, module bytes and vectors."""

    manifest: Manifest
    wasm: bytes
    vectors: list[Vector]
    where: str
    problems: list[str] = field(default_factory=list)
    key_id: str | None = None


def locate(path: Path, trusted_keys: list[str] | None = None) -> Located:
    """The built plugin at `path`; UsageProblem (one line, exit 2) when there is none."""
    try:
        if path.is_file() and path.suffix == SUFFIX:
            return _package(path, trusted_keys)
        if path.is_file() and path.name == MANIFEST_NAME:
            path = path.parent
        if not path.is_dir():
            raise UsageProblem(f"{path}: no such folder or {SUFFIX} package")
        manifest = load_manifest(path)
        if manifest.module_file is not None:  # a built folder (dist/, or wasm/<id>/)
            return _built(path, manifest, [])
        source_manifest(path)
        dist = path / DIST
        if not (dist / MANIFEST_NAME).is_file():
            raise UsageProblem(f"{path}: not built yet: run cms-plugin build {path}")
        located = _built(dist, load_manifest(dist), [])
        expected = built_manifest_text(manifest, located.manifest.module_file or "",
                                       located.manifest.module_sha256 or "")
        if (dist / MANIFEST_NAME).read_text(encoding="utf-8") != expected:
            located.problems.append(f"{dist / MANIFEST_NAME} is older than {path / MANIFEST_NAME}: "
                                    f"run cms-plugin build {path}")
        located.vectors = load_vectors(path, manifest)  # the source's vectors are the newest
        return located
    except (ManifestError, VectorError, PackageError, ProjectError) as exc:
        raise UsageProblem(str(exc)) from None


def _built(folder: Path, manifest: Manifest, problems: list[str]) -> Located:
    assert manifest.module_file is not None
    module = folder / manifest.module_file
    if not module.is_file():
        raise UsageProblem(f"{folder / MANIFEST_NAME}: module.file: {module} does not exist")
    return Located(manifest, module.read_bytes(), load_vectors(folder, manifest), str(folder),
                   problems)


def _package(path: Path, trusted_keys: list[str] | None) -> Located:
    package = read_package(path.read_bytes(), trusted_keys, source=str(path))
    vectors: list[Vector] = []
    for name, text in package.vector_files().items():
        vectors.extend(parse_vectors(text, name, package.manifest))
    return Located(package.manifest, package.wasm, vectors, str(path), [], package.key_id)
