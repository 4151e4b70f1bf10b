"""Compiling a plugin's source to a wasm module: Zig and C with the `ziglang` package here,
AssemblyScript (`ts`) in plugin_sdk.toolchain_ts, Rust in plugin_sdk.toolchain_rust.

The compiler comes from PyPI (`pip install 'cms[sdk]'`), pinned, so every author and CI build with
the same bytes. Release settings, a 64 KiB stack and no debug info; the compiler's caches live in a
temporary folder and source paths never reach the module, so the same source gives the same bytes
wherever it is built.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Literal

from plugin_sdk import abi, manifest

Lang = Literal["zig", "c", "ts", "rust"]
LANGS: tuple[Lang, ...] = manifest.LANGS  # type: ignore[assignment]
ZIG_VERSION = "0.14.1"
STACK_BYTES = 64 * 1024
GUEST_DIR = Path(__file__).parent / "guest"
EXPORTS = (abi.EXPORT_ALLOC, abi.EXPORT_HANDLE, abi.EXPORT_ABI_VERSION)
COMPILE_TIMEOUT_S = 300


class ToolchainError(Exception):
    """The compiler is missing or rejected the source; `str()` is what the author should read."""


def zig_available() -> bool:
    """Whether the `ziglang` package (the SDK's compiler) is installed."""
    return importlib.util.find_spec("ziglang") is not None


def command(lang: Lang, source: Path, output: Path, root: Path | None = None) -> list[str]:
    """The compiler command line for `source` writing `output`, run from `root` (the plugin
    folder; default the source's folder), with source paths relative to it."""
    root = root or source.parent
    relative = str(source.resolve().relative_to(root.resolve()))
    zig = [sys.executable, "-m", "ziglang"]
    if lang == "zig":
        return [*zig, "build-exe", "-target", "wasm32-freestanding", "-O", "ReleaseSmall",
                "-fno-entry", "-fstrip", "--stack", str(STACK_BYTES),
                *(f"--export={name}" for name in EXPORTS),
                "--dep", "cms", f"-Mroot={relative}", f"-Mcms={GUEST_DIR / 'zig' / 'cms.zig'}",
                f"-femit-bin={output}"]
    return [*zig, "cc", "--target=wasm32-freestanding", "-Oz", "-nostdlib", "-ffreestanding",
            "-std=c11", "-Wall", "-Werror=implicit-function-declaration",
            "-fno-ident", f"-ffile-prefix-map={root.resolve()}=.",
            f"-I{GUEST_DIR / 'c'}", f"-ffile-prefix-map={GUEST_DIR}=cms-sdk",
            "-Wl,--no-entry", "-Wl,--strip-all", f"-Wl,-z,stack-size={STACK_BYTES}",
            "-o", str(output), relative]


def compile_module(lang: Lang, source: Path, output: Path, root: Path | None = None) -> bytes:
    """Compile `source` into `output` (from `root`, default the source's folder) and return the
    module's bytes.

    Raises ToolchainError when ziglang is not installed or the compiler fails (its message kept).
    """
    if lang not in LANGS:
        raise ToolchainError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    if lang == "ts":
        from plugin_sdk import toolchain_ts
        return toolchain_ts.compile_module(Path(source), Path(output), Path(root or Path(source).parent))
    if lang == "rust":
        from plugin_sdk import toolchain_rust
        return toolchain_rust.compile_module(Path(source), Path(output), Path(root or Path(source).parent))
    if not zig_available():
        raise ToolchainError("the compiler is not installed: pip install 'cms[sdk]' "
                             f"(brings ziglang=={ZIG_VERSION})")
    source = Path(source)
    root = Path(root) if root is not None else source.parent
    if not source.is_file():
        raise ToolchainError(f"{source}: no such source file")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cms-plugin-build-") as cache:
        env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": f"{cache}/global",
               "ZIG_LOCAL_CACHE_DIR": f"{cache}/local"}
        try:
            done = subprocess.run(command(lang, source, output.resolve(), root), cwd=root,
                                  env=env, capture_output=True, text=True,
                                  timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"the compiler took longer than {COMPILE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise ToolchainError(f"{source}: compile failed:\n{(done.stderr or done.stdout).strip()}")
    return output.read_bytes()
