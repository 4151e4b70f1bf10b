"""docs/plugin-authoring.md cannot rot: its tutorial runs here, command by command, in a fresh
folder with fresh keys, exactly as a new author would type it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from plugin_sdk import toolchain_rust
from plugin_sdk.package import read_package
from plugin_sdk.toolchain import zig_available
from tests.conftest import require

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin-authoring.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def tutorial_steps() -> list[tuple[str, str, str]]:
    """(kind, target, text) in document order: ("run", "", command) for each `$` line of a
    console block, ("write"|"append", path, content) for a block marked file=/append=."""
    steps: list[tuple[str, str, str]] = []
    for lang, info, body in FENCE.findall(DOC.read_text(encoding="utf-8")):
        attrs = dict(a.split("=", 1) for a in info.split() if "=" in a)
        if lang == "console":
            steps += [("run", "", line[2:]) for line in body.splitlines() if line.startswith("$ ")]
        elif "file" in attrs:
            steps.append(("write", attrs["file"], body))
        elif "append" in attrs:
            steps.append(("append", attrs["append"], body))
    return steps


def test_the_tutorial_has_both_languages_and_every_command() -> None:
    commands = " ".join(text for kind, _, text in tutorial_steps() if kind == "run")
    for command in ("new", "build", "test", "check", "keygen", "package"):
        assert f"cms-plugin {command}" in commands
    assert "--lang zig" in commands and "--lang c" in commands
    assert "--lang ts" in commands
    assert "--lang rust" in commands


def test_the_tutorial_runs(tmp_path: Path) -> None:
    require(zig_available(), "the ziglang package (pip install 'cms[sdk]')")
    require(shutil.which("node") is not None, "Node.js (the TypeScript tutorial)")
    require(toolchain_rust.available(), f"cargo with the wasm32 std (the Rust tutorial: {toolchain_rust.INSTALL})")
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cwd = tmp_path / "work"
    cwd.mkdir()
    for kind, target, text in tutorial_steps():
        if kind == "write":
            (cwd / target).write_text(text, encoding="utf-8")
            continue
        if kind == "append":
            with (cwd / target).open("a", encoding="utf-8") as handle:
                handle.write(text)
            continue
        argv = shlex.split(text)
        if argv[0] == "cd":
            cwd = (cwd / argv[1]).resolve()
            continue
        done = subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"$ {text}\n{done.stdout}\n{done.stderr}"
    # The end state the tutorial promises: a signed package per language, by the author's key,
    # with the actions added on the way.
    for folder, action in (("packing-list", "checklist"), ("visa-notes", "documents"),
                           ("baggage-rules", "allowance"), ("travel-alerts", "advisory")):
        package = next((tmp_path / "work" / folder / "dist").glob("*.cmsplugin"))
        trusted = (home / ".config" / "cms-plugin" / "keys" / "author.pub").read_text()
        opened = read_package(package.read_bytes(), [trusted])
        assert action in opened.manifest.actions
        assert any(name.startswith("tests/") for name in zipfile.ZipFile(package).namelist())
