"""`cms-plugin new`, `build` and `check`: scaffold, compile, and prove manifest and module agree."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plugin_sdk.cli.common import (EXIT_FAULT, EXIT_TEST_FAILURE, UsageProblem, cache_dir, console,
                                   emit_json, fault_exit, json_option)
from plugin_sdk.cli.locate import locate
from plugin_sdk.manifest import ManifestError
from plugin_sdk.project import ProjectError, check_module_against, scaffold
from plugin_sdk.toolchain import LANGS, ToolchainError


@click.command()
@click.argument("name")
@click.option("--lang", type=click.Choice(LANGS), default="zig", show_default=True,
              help="The plugin's language.")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Where to create the plugin's folder.")
@json_option
def new(name: str, lang: str, parent: Path, as_json: bool) -> None:
    """Create a working plugin NAME: manifest, source, test vectors and a README.

    NAME is a title ("Hello World") or an id ("hello-world"); the folder is named after the id.
    """
    try:
        folder = scaffold(name, lang, parent)
    except ProjectError as exc:
        raise UsageProblem(str(exc)) from None
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if as_json:
        emit_json({"folder": str(folder), "lang": lang, "files": files})
        return
    out = console()
    out.print(f"[green]Created[/] {folder} ({lang}): {', '.join(files)}")
    out.print(f"Next: [bold]cms-plugin dev {folder}[/] (a live preview), then "
              f"[bold]cms-plugin build {folder}[/] and [bold]cms-plugin test {folder}[/]")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default FOLDER/dist; the bundled plugins use wasm/<id>).")
@click.option("--artifact-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to precompile the runtime artifact (default: the cms-plugin cache).")
@click.option("--check-reproducible", is_flag=True,
              help="Build twice, from two different paths, and fail unless the bytes are equal.")
@click.option("--verify", is_flag=True,
              help="Write nothing; fail unless the module in --out equals a fresh build.")
@json_option
def build(folder: Path, out: Path | None, artifact_dir: Path | None, check_reproducible: bool,
          verify: bool, as_json: bool) -> None:
    """Compile the plugin in FOLDER to wasm (release, 64 KiB stack) and write the module, its
    manifest with sha256 and its test vectors into the output folder."""
    from cms.runtime import PluginFault
    from plugin_sdk import project

    if not folder.is_dir():
        raise UsageProblem(f"{folder}: no such folder")
    try:
        result = project.build(folder, out, check_reproducible=check_reproducible, verify=verify,
                               artifact_dir=None if verify else (artifact_dir or cache_dir()))
    except (ManifestError, ProjectError) as exc:
        raise UsageProblem(str(exc)) from None
    except ToolchainError as exc:
        if as_json:
            emit_json({"error": {"kind": "compile", "message": str(exc)}})
        else:
            click.echo(f"cms-plugin: {exc}", err=True)
        sys.exit(EXIT_TEST_FAILURE if "compile failed" in str(exc) else 2)
    except PluginFault as fault:
        fault_exit(fault, as_json)
    failed = result.reproducible is False or result.unchanged is False
    if as_json:
        emit_json(result.as_dict())
    else:
        out_ = console()
        verb = "Verified" if verify else "Built"
        out_.print(f"[green]{verb}[/] {result.manifest.id} {result.manifest.version}: "
                   f"{result.module_path} ({result.size:,} bytes, sha256 {result.sha256[:16]}...)")
        if result.reproducible is not None:
            out_.print("reproducible: [green]yes[/], two builds from different paths are identical"
                       if result.reproducible else
                       "[red]NOT reproducible[/]: two builds of the same source differ")
        if result.unchanged is not None:
            out_.print(f"{result.module_path}: [green]identical[/] to a fresh build"
                       if result.unchanged else
                       f"[red]{result.module_path} differs from a fresh build[/] of its source")
    if failed:
        sys.exit(EXIT_TEST_FAILURE)


@click.command()
@click.argument("target", type=click.Path(path_type=Path), default=".")
@click.option("--trusted-key", "trusted", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A package must be signed by one of these public keys (repeatable).")
@json_option
def check(target: Path, trusted: tuple[Path, ...], as_json: bool) -> None:
    """Check that manifest and module agree: ABI exports, imports and host ops only for requested
    capabilities, limits within the caps, size, sha256; for a package also its signature.

    TARGET is a plugin folder (built with cms-plugin build), a built folder or a .cmsplugin file.
    Exit 1 when a check fails.
    """
    from cms.runtime import PluginFault
    from plugin_sdk.testing import Harness

    keys = []
    for path in trusted:
        try:
            keys.append(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise UsageProblem(f"{path}: cannot read ({exc.strerror})") from None
    located = locate(target, keys if trusted else None)
    try:
        report = check_module_against(located.manifest, located.wasm)
    except PluginFault as fault:
        fault_exit(fault, as_json)
    report.problems[:0] = located.problems
    # What the code does, not only what it names: the vectors run with exactly the requested
    # capabilities, and a call outside them is refused by the sandbox.
    harness = Harness(located.wasm, located.manifest, cache_dir())
    try:
        for vector in located.vectors:
            outcome = harness.run_vector(vector)
            if outcome.fault == "capability_denied" and vector.grants is None:
                report.problems.append(f"{vector.label}: {outcome.problem}")
    except PluginFault as fault:
        fault_exit(fault, as_json)
    finally:
        harness.close()
    report.facts["vectors"] = len(located.vectors)
    if located.key_id:
        report.facts["signed_by"] = located.key_id
    if as_json:
        emit_json({"ok": report.ok, "plugin": located.manifest.id,
                   "version": located.manifest.version, "where": located.where,
                   "problems": report.problems, "facts": report.facts})
    else:
        out = console()
        m = located.manifest
        out.print(f"{m.id} {m.version} ({located.where}): {report.facts['bytes']:,} bytes, "
                  f"capabilities {', '.join(sorted(m.capabilities)) or 'none'}, "
                  f"ops {', '.join(report.facts.get('ops', [])) or 'none'}")
        if located.key_id:
            out.print(f"signature: [green]valid[/], key {located.key_id}")
        for problem in report.problems:
            out.print(f"[red]✗[/] {problem}")
        if report.ok:
            out.print("[green]✓ manifest and module agree[/]")
    if not report.ok:
        sys.exit(EXIT_TEST_FAILURE)
