"""`cms-plugin keygen` and `package`: the author's ed25519 key and the signed .cmsplugin archive."""

from __future__ import annotations

from pathlib import Path

import click

from plugin_sdk.cli.common import UsageProblem, config_dir, console, emit_json, json_option
from plugin_sdk.cli.locate import locate
from plugin_sdk.manifest import MANIFEST_NAME
from plugin_sdk.package import (SUFFIX, PackageError, build_package, key_id, load_private_key,
                                public_line_of, write_key_pair)


def _default_key_dir() -> Path:
    return config_dir() / "keys"


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the key pair (default ~/.config/cms-plugin/keys).")
@click.option("--name", default="author", show_default=True, help="File name of the pair.")
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@json_option
def keygen(directory: Path | None, name: str, force: bool, as_json: bool) -> None:
    """Make the author's ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub (give it
    to the CMS admins so they can trust your packages)."""
    directory = directory or _default_key_dir()
    try:
        private, public = write_key_pair(directory, name, force=force)
    except PackageError as exc:
        raise UsageProblem(str(exc)) from None
    except OSError as exc:
        raise UsageProblem(f"{directory}: cannot write the key ({exc.strerror})") from None
    ident = key_id(public.read_text())
    if as_json:
        emit_json({"private_key": str(private), "public_key": str(public), "key_id": ident})
        return
    out = console()
    out.print(f"[green]Key pair[/] {ident}: private {private} (keep it secret), public {public}")


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The private key (default ~/.config/cms-plugin/keys/author.key).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The package file (default FOLDER/dist/<id>-<version>.cmsplugin).")
@json_option
def package(folder: Path, key_path: Path | None, out_path: Path | None, as_json: bool) -> None:
    """Pack the built plugin in FOLDER (manifest, module, test vectors, checksums) into one
    .cmsplugin archive signed with your ed25519 key."""
    key_path = key_path or _default_key_dir() / "author.key"
    try:
        key_text = key_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageProblem(f"{key_path}: no such key: run cms-plugin keygen first") from None
    except OSError as exc:
        raise UsageProblem(f"{key_path}: cannot read ({exc.strerror})") from None
    located = locate(folder)
    if located.problems:
        raise UsageProblem(located.problems[0])
    built = Path(located.where)
    manifest = located.manifest
    try:
        key = load_private_key(key_text, str(key_path))
        vectors = {p.name: p.read_bytes() for p in sorted((built / manifest.tests).glob("*.json"))}
        data = build_package((built / MANIFEST_NAME).read_text(encoding="utf-8"), located.wasm,
                             vectors, key)
    except PackageError as exc:
        raise UsageProblem(str(exc)) from None
    out_path = out_path or built / f"{manifest.id}-{manifest.version}{SUFFIX}"
    if out_path.suffix != SUFFIX:
        raise UsageProblem(f"{out_path}: a package file must end in {SUFFIX}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out_path)  # never a half-written package
    ident = key_id(public_line_of(key))
    if as_json:
        emit_json({"package": str(out_path), "bytes": len(data), "plugin": manifest.id,
                   "version": manifest.version, "key_id": ident,
                   "files": [manifest.module_file, MANIFEST_NAME,
                             *(f"tests/{n}" for n in vectors)]})
        return
    console().print(f"[green]Packaged[/] {out_path} ({len(data):,} bytes), signed with key {ident}. "
                    f"Check it: cms-plugin check {out_path}")
