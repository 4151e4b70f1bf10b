"""AssemblyScript (`lang = "ts"`): compile with the pinned `assemblyscript` from the npm registry.

The compiler is installed on first use into `$XDG_CACHE_HOME/cms-plugin/assemblyscript-<version>`
(`npm install`, under a file lock so parallel first builds wait for one install), so a plugin
folder needs no node_modules. The SDK's guest library (`plugin_sdk/guest/assemblyscript/cms`) is
found as the package "cms" and brings its own runtime: a bump allocator that never frees (every
call runs in a fresh instance) and ends the call with fault memory_limit when memory runs out.
`asc.mjs` compiles it in place of AssemblyScript's stub runtime (a runtime given by path would be
compiled as a GC runtime, with a shadow stack around every call: three times the fuel). Like the
stub, it keeps no stack in linear memory (locals live in wasm locals), so the engine's wasm stack
is the only one; asc's `--stackSize` applies to its GC runtimes only. Builds optimise for size
(-O3z) and carry no debug info or paths: the same source gives the same bytes wherever it is built.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ASC_VERSION = "0.28.20"
NODE_MAJOR = 18
NODE_MISSING = f"Node.js {NODE_MAJOR}+ is needed for TypeScript plugins: apt-get install nodejs npm"
GUEST_DIR = Path(__file__).parent / "guest" / "assemblyscript"
INSTALL_TIMEOUT_S = 600
COMPILE_TIMEOUT_S = 300


def _error(message: str) -> Exception:
    from plugin_sdk.toolchain import ToolchainError

    return ToolchainError(message)


def tools_dir() -> Path:
    """Where compilers installed on first use live (XDG cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cms-plugin"


def compiler_home() -> Path:
    """The folder the pinned AssemblyScript is (or will be) installed in."""
    return tools_dir() / f"assemblyscript-{ASC_VERSION}"


def _installed_version(home: Path) -> str | None:
    try:
        package = json.loads((home / "node_modules" / "assemblyscript" / "package.json")
                             .read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = package.get("version") if isinstance(package, dict) else None
    return version if isinstance(version, str) else None


def node_command() -> str:
    """The `node` executable; raises ToolchainError (NODE_MISSING) when it is absent or too old."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        raise _error(NODE_MISSING)
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        raise _error(NODE_MISSING) from None
    match = re.match(r"v(\d+)\.", done.stdout.strip())
    if done.returncode != 0 or match is None or int(match.group(1)) < NODE_MAJOR:
        raise _error(NODE_MISSING)
    return node


def _npm_failure(output: str) -> str:
    """The line of npm's output that says why it failed."""
    lines = [re.sub(r"^npm (ERR!|error) ?", "", line).strip() for line in output.splitlines()
             if re.match(r"npm (ERR!|error)", line)]
    useful = [line for line in lines
              if line and not re.match(r"(code|errno|syscall)\b|A complete log", line)]
    return (useful or lines or [output.strip() or "no output"])[0]


def ensure_compiler() -> Path:
    """The pinned AssemblyScript's compiler module (`dist/asc.js`), installed with npm on first use.

    Raises ToolchainError when Node.js is missing or npm cannot install it (one line: the cause).
    """
    node_command()
    home = compiler_home()
    asc = home / "node_modules" / "assemblyscript" / "dist" / "asc.js"
    if _installed_version(home) == ASC_VERSION and asc.is_file():
        return asc
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel first build waits here, then finds it
        if _installed_version(home) == ASC_VERSION and asc.is_file():
            return asc
        staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
        try:
            try:
                done = subprocess.run(
                    [shutil.which("npm") or "npm", "install", "--prefix", str(staging),
                     "--no-audit", "--no-fund", "--save-exact", "--loglevel=error",
                     f"assemblyscript@{ASC_VERSION}"],
                    capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, cwd=staging)
            except subprocess.TimeoutExpired:
                raise _error(f"npm install assemblyscript@{ASC_VERSION} took longer than "
                             f"{INSTALL_TIMEOUT_S} s") from None
            if done.returncode != 0:
                raise _error(f"npm install assemblyscript@{ASC_VERSION} failed: "
                             f"{_npm_failure(done.stderr + done.stdout)}")
            found = _installed_version(staging)
            if found != ASC_VERSION:
                raise _error(f"npm installed assemblyscript {found}, not the pinned {ASC_VERSION}")
            shutil.rmtree(home, ignore_errors=True)
            staging.rename(home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return asc


def command(asc: Path, source: Path, output: Path, root: Path) -> list[str]:
    """The compiler command line for `source` writing `output`, run from `root` (the plugin
    folder), with the source path relative to it."""
    relative = str(source.resolve().relative_to(root.resolve()))
    return [node_command(), str(GUEST_DIR / "asc.mjs"), str(asc),
            str(GUEST_DIR / "cms" / "runtime.ts"), relative, "--path", str(GUEST_DIR),
            "--use", "abort=~lib/cms/abort/cmsAbort", "-O3z", "--noAssert", "--noColors",
            "--outFile", str(output)]


def compile_module(source: Path, output: Path, root: Path) -> bytes:
    """Compile `source` (inside the plugin folder `root`) into `output`; raises ToolchainError."""
    if not source.is_file():
        raise _error(f"{source}: no such source file")
    asc = ensure_compiler()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(command(asc, source, output.resolve(), root), cwd=root,
                              capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise _error(f"the compiler took longer than {COMPILE_TIMEOUT_S} s") from None
    if done.returncode != 0 or not output.is_file():
        raise _error(f"{source}: compile failed:\n{(done.stderr or done.stdout).strip()}")
    return output.read_bytes()
