"""A plugin author's project: scaffold (`new`), build, and the manifest/module agreement check.

Plain functions over paths and values; the CLI (`plugin_sdk.cli`) only parses and prints.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from plugin_sdk import abi, toolchain
from plugin_sdk.capabilities import OPS
from plugin_sdk.manifest import (ID_PATTERN, MANIFEST_NAME, MAX_MODULE_BYTES, Manifest,
                                 load_manifest, parse_manifest)

TEMPLATES = Path(__file__).parent / "templates"
DIST = "dist"
_OP_IN_MODULE = re.compile(rb"(?<![A-Za-z0-9_.])(" + b"|".join(
    re.escape(op.encode()) for op in sorted(OPS, key=len, reverse=True)) + rb")(?![A-Za-z0-9_])")
#: The same in UTF-16LE, as AssemblyScript stores string literals.
_OP_IN_MODULE_UTF16 = re.compile(rb"(?<![A-Za-z0-9_.]\x00)(" + b"|".join(
    re.escape(op.encode("utf-16-le")) for op in sorted(OPS, key=len, reverse=True))
    + rb")(?![A-Za-z0-9_]\x00)")


class ProjectError(ValueError):
    """A project that cannot be scaffolded, built or checked as asked; `str()` is one line."""


# new ------------------------------------------------------------------------------------------

def scaffold(name: str, lang: str, parent: Path) -> Path:
    """Create `parent/<id>` from the `lang` template and return it.

    NAME may be a title ("Hello World") or an id ("hello-world"). Raises ProjectError when the
    name gives no valid id, the language is unknown, or the folder exists and is not empty.
    """
    ident = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not ID_PATTERN.match(ident):
        raise ProjectError(f"{name!r} does not make a plugin id: use 2-32 letters, digits and "
                           "'-', starting with a letter")
    template = TEMPLATES / lang
    if lang not in toolchain.LANGS or not template.is_dir():
        raise ProjectError(f"unknown language {lang!r}; expected one of {', '.join(toolchain.LANGS)}")
    target = parent / ident
    if target.exists() and any(target.iterdir()):
        raise ProjectError(f"{target} already exists and is not empty")
    title = name.strip() if not ID_PATTERN.match(name.strip()) else ident.replace("-", " ").title()
    values = {"{{id}}": ident, "{{name}}": title, "{{ident}}": ident.replace("-", "_")}
    for source in sorted(template.rglob("*")):
        if source.is_dir():
            continue
        relative = source.relative_to(template)
        if relative.suffix == ".tmpl":
            relative = relative.with_suffix("")
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        destination.write_text(text, encoding="utf-8")
    return target


# build ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildResult:
    """What `build` wrote."""

    manifest: Manifest
    module_path: Path
    manifest_path: Path
    sha256: str
    size: int
    artifact_path: Path | None = None
    reproducible: bool | None = None
    unchanged: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.manifest.id, "version": self.manifest.version,
                "module": str(self.module_path), "manifest": str(self.manifest_path),
                "sha256": self.sha256, "bytes": self.size,
                "artifact": str(self.artifact_path) if self.artifact_path else None,
                "reproducible": self.reproducible, "unchanged": self.unchanged}


def source_manifest(folder: Path) -> Manifest:
    """The manifest of a source folder; raises ManifestError, or ProjectError without [build]."""
    manifest = load_manifest(folder)
    if manifest.build_lang is None or manifest.build_source is None:
        raise ProjectError(f"{folder / MANIFEST_NAME}: build: missing [build] with lang and source")
    return manifest


def compile_folder(folder: Path, manifest: Manifest, output: Path) -> bytes:
    """Compile the folder's source into `output`; raises ToolchainError."""
    assert manifest.build_lang is not None and manifest.build_source is not None
    return toolchain.compile_module(manifest.build_lang,  # type: ignore[arg-type]
                                    folder / manifest.build_source, output, folder)


def build(folder: Path, out: Path | None = None, *, check_reproducible: bool = False,
          verify: bool = False, artifact_dir: Path | None = None) -> BuildResult:
    """Compile the plugin in `folder` and write `<out>/<id>.wasm` and `<out>/plugin.toml`.

    `check_reproducible` compiles a second time from a copy at another path and compares the
    bytes; `verify` compares with the module already in `out` (CI: committed modules match their
    source) and writes nothing. With `artifact_dir`, precompiles the runtime artifact there.
    Raises ManifestError, ToolchainError or ProjectError.
    """
    folder = Path(folder)
    manifest = source_manifest(folder)
    out = Path(out) if out is not None else folder / DIST
    module_path = out / f"{manifest.id}.wasm"
    with tempfile.TemporaryDirectory(prefix="cms-plugin-out-") as scratch:
        wasm = compile_folder(folder, manifest, Path(scratch) / "module.wasm")
        reproducible = None
        if check_reproducible:
            copy = Path(scratch) / "elsewhere" / folder.resolve().name
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(DIST, ".git"))
            again = compile_folder(copy, manifest, Path(scratch) / "again.wasm")
            reproducible = again == wasm
    if len(wasm) > MAX_MODULE_BYTES:
        raise ProjectError(f"the module is {len(wasm):,} bytes; at most {MAX_MODULE_BYTES:,}")
    sha = hashlib.sha256(wasm).hexdigest()
    manifest_text = built_manifest_text(manifest, module_path.name, sha)
    if verify:
        existing = module_path.read_bytes() if module_path.is_file() else None
        return BuildResult(parse_manifest(manifest_text, str(out / MANIFEST_NAME)), module_path,
                           out / MANIFEST_NAME, sha, len(wasm), None, reproducible,
                           unchanged=existing == wasm)
    out.mkdir(parents=True, exist_ok=True)
    module_path.write_bytes(wasm)
    (out / MANIFEST_NAME).write_text(manifest_text, encoding="utf-8")
    _copy_vectors(folder / manifest.tests, out / manifest.tests)
    artifact = None
    if artifact_dir is not None:
        artifact = precompile(wasm, artifact_dir)
    return BuildResult(parse_manifest(manifest_text, str(out / MANIFEST_NAME)), module_path,
                       out / MANIFEST_NAME, sha, len(wasm), artifact, reproducible)


def _copy_vectors(source: Path, target: Path) -> None:
    """A built folder carries the test vectors, so it can be checked and tested on its own."""
    if target.resolve() == source.resolve():
        return
    if target.is_dir():
        for old in target.glob("*.json"):
            old.unlink()
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for vector in sorted(source.glob("*.json")):
            shutil.copyfile(vector, target / vector.name)


def built_manifest_text(manifest: Manifest, module_file: str, sha256: str) -> str:
    """The manifest `build` writes: the source manifest with [module] and without [build]."""
    header = ("# Written by cms-plugin build from the plugin's source manifest; do not edit.\n"
              f"# module.sha256 is the sha256 of {module_file}.\n")
    return header + tomli_w.dumps(manifest.with_module(module_file, sha256))


def precompile(wasm: bytes, artifact_dir: Path) -> Path:
    """Compile the runtime artifact for this host's engine; raises PluginFault for a bad module."""
    from cms.runtime import Runtime, RuntimeConfig

    runtime = Runtime(RuntimeConfig(artifact_dir=Path(artifact_dir)))
    try:
        return runtime.compile(wasm)
    finally:
        runtime.close()


# check ----------------------------------------------------------------------------------------

@dataclass
class CheckReport:
    """Findings of `check`: `problems` fail it; `facts` describe the module."""

    manifest: Manifest
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def ops_named_in(wasm: bytes) -> set[str]:
    """Host op names that appear as strings in the module, in UTF-8 or UTF-16LE (what its code
    can ask the host for)."""
    return ({match.decode() for match in _OP_IN_MODULE.findall(wasm)}
            | {match.decode("utf-16-le") for match in _OP_IN_MODULE_UTF16.findall(wasm)})


def check_module_against(manifest: Manifest, wasm: bytes, caps: Any = None) -> CheckReport:
    """Static agreement of manifest and module: size, sha256, ABI exports and memory, imports
    and op names only for requested capabilities, limits within the admin caps.

    Raises PluginFault (abi_violation, memory_limit) for a module that can never load.
    """
    import wasmtime

    from cms.runtime import DEFAULT_CAPS, DEFAULT_LIMITS, LimitsError
    from cms.runtime.modulecheck import check_module

    report = CheckReport(manifest)
    sha = hashlib.sha256(wasm).hexdigest()
    report.facts.update(bytes=len(wasm), sha256=sha)
    if len(wasm) > MAX_MODULE_BYTES:
        report.problems.append(f"the module is {len(wasm):,} bytes; at most {MAX_MODULE_BYTES:,}")
    if manifest.module_sha256 is not None and manifest.module_sha256 != sha:
        report.problems.append(f"module.sha256 in plugin.toml is {manifest.module_sha256[:12]}..., "
                               f"the module's is {sha[:12]}...: build again")
    try:
        limits = DEFAULT_LIMITS.with_requests(dict(manifest.limits), caps or DEFAULT_CAPS)
        report.facts["limits"] = {"fuel": limits.fuel, "memory_mb": limits.memory_bytes // 2**20,
                                  "timeout_ms": limits.timeout_ms}
    except LimitsError as exc:
        report.problems.append(f"limits: {exc}")
    from cms.runtime import FaultKind, PluginFault

    try:
        module = wasmtime.Module(wasmtime.Engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        from cms.runtime.results import one_line
        raise PluginFault(FaultKind.ABI_VIOLATION, f"not a valid module: {one_line(exc)}") from None
    shape = check_module(module)
    imports = sorted(f"{i.module}.{i.name}" for i in module.imports)
    report.facts.update(imports=imports, exports=sorted(e.name for e in module.exports),
                        min_memory_bytes=shape.min_memory_bytes)
    if f"{abi.HOST_MODULE}.log" in imports and "log" not in manifest.capabilities:
        report.problems.append('the module imports cms.log but plugin.toml does not request '
                               'capability "log"')
    named = ops_named_in(wasm)
    report.facts["ops"] = sorted(named)
    for op in sorted(named):
        capability = OPS[op]
        if capability not in manifest.capabilities:
            report.problems.append(f"the module calls host op {op!r}, which needs capability "
                                   f"{capability!r}; plugin.toml does not request it")
    if named and f"{abi.HOST_MODULE}.call" not in imports:
        report.facts["ops"] = []  # strings only, with no way to call the host
    if "limits" in report.facts and shape.min_memory_bytes > report.facts["limits"]["memory_mb"] * 2**20:
        report.problems.append(f"the module starts with {shape.min_memory_bytes:,} bytes of memory, "
                               f"more than its memory limit")
    return report
