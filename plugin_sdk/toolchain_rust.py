"""Rust (`lang = "rust"`): compile with a cargo whose rustc has the wasm32-unknown-unknown std.

The plugin folder holds a Cargo.toml (a cdylib depending on `cms_plugin = "1"`) and its sources.
The build copies the folder into a temporary folder with the SDK's guest crate (plugin_sdk/guest/
rust) inside it as `cms-sdk/`, a member of the plugin's workspace, points the `cms_plugin`
dependency there with a `[patch]` given on the command line, and builds offline with the SDK's
release profile (size-optimised, LTO, panic=abort, one codegen unit, stripped) and a 64 KiB
stack. Cargo hands rustc workspace paths relative to the workspace, so no folder path reaches
the module; the toolchain's own sources are remapped to `/rustc`. The flags carry no temporary
path (cargo hashes them into symbol names), so the same source gives the same bytes wherever it
is built. Exports beyond the ABI's (wasm-ld's `__heap_base` and `__data_end`) are dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from plugin_sdk import abi
from plugin_sdk.toolchain import COMPILE_TIMEOUT_S, STACK_BYTES, ToolchainError

INSTALL = "apt-get install rustc cargo libstd-rust-dev-wasm32"
TARGET = "wasm32-unknown-unknown"
GUEST_CRATE = Path(__file__).parent / "guest" / "rust"
GUEST_FOLDER = "cms-sdk"  # where the guest crate sits inside the copied plugin folder
KEEP_EXPORTS = frozenset({abi.EXPORT_MEMORY, abi.EXPORT_ALLOC, abi.EXPORT_HANDLE,
                          abi.EXPORT_ABI_VERSION})
PROFILE = {"opt-level": '"z"', "lto": "true", "panic": '"abort"', "codegen-units": "1",
           "strip": "true", "debug": "false", "incremental": "false"}


def candidates() -> list[Path]:
    """The cargos to try, in order: $CMS_CARGO alone when set, else /usr/bin/cargo and the one
    on PATH."""
    chosen = os.environ.get("CMS_CARGO")
    if chosen:
        return [Path(chosen)]
    found = [Path("/usr/bin/cargo")]
    on_path = shutil.which("cargo")
    if on_path:
        found.append(Path(on_path))
    return [path for i, path in enumerate(found) if path not in found[:i]]


def _rustc_for(cargo: Path) -> tuple[Path, Path] | None:
    """(rustc, sysroot) of the rustc beside `cargo` when its sysroot has the wasm32 std."""
    rustc = cargo.parent / "rustc"
    if not (cargo.is_file() and os.access(cargo, os.X_OK) and rustc.is_file()):
        return None
    try:
        done = subprocess.run([str(rustc), "--print", "sysroot"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    sysroot = Path(done.stdout.strip())
    if done.returncode != 0 or not (sysroot / "lib" / "rustlib" / TARGET).is_dir():
        return None
    return rustc, sysroot


def find_cargo() -> tuple[Path, Path, Path]:
    """(cargo, rustc, sysroot) of the first candidate with the wasm32 target; raises
    ToolchainError."""
    tried = candidates()
    for cargo in tried:
        found = _rustc_for(cargo)
        if found is not None:
            return cargo, *found
    names = ", ".join(str(path) for path in tried)
    raise ToolchainError(f"no Rust compiler with the {TARGET} target (tried {names}): {INSTALL}")


def available() -> bool:
    """Whether a cargo with the wasm32 target is installed."""
    return any(_rustc_for(cargo) is not None for cargo in candidates())


def crate_name(root: Path) -> str:
    """The library name cargo gives the module, from the plugin's Cargo.toml; raises
    ToolchainError when it is missing or has no [package] name."""
    manifest = root / "Cargo.toml"
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolchainError(f"{manifest}: no such file (a Rust plugin needs a Cargo.toml)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolchainError(f"{manifest}: not readable TOML: {exc}") from None
    name = data.get("lib", {}).get("name") or data.get("package", {}).get("name")
    if not isinstance(name, str) or not name:
        raise ToolchainError(f"{manifest}: package.name: missing")
    return name.replace("-", "_")


def command(cargo: Path, manifest: Path, guest: Path) -> list[str]:
    """The cargo command line building `manifest` with `cms_plugin` taken from `guest`."""
    config = [f"patch.crates-io.cms_plugin.path={json.dumps(str(guest))}",  # a TOML string
              *(f"profile.release.{key}={value}" for key, value in PROFILE.items())]
    return [str(cargo), "build", "--offline", "--release", "--target", TARGET, "--quiet",
            "--manifest-path", str(manifest), *(arg for c in config for arg in ("--config", c))]


def compile_module(source: Path, output: Path, root: Path) -> bytes:
    """Compile `source` (inside the plugin folder `root`) into `output`; raises ToolchainError."""
    if not source.is_file():
        raise ToolchainError(f"{source}: no such source file")
    name = crate_name(root)
    cargo, rustc, sysroot = find_cargo()
    with tempfile.TemporaryDirectory(prefix="cms-plugin-rust-") as scratch:
        work = Path(scratch).resolve()
        plugin = work / "plugin"
        shutil.copytree(root, plugin, ignore=shutil.ignore_patterns("dist", "target", ".git",
                                                                    GUEST_FOLDER, "Cargo.lock"))
        shutil.copytree(GUEST_CRATE, plugin / GUEST_FOLDER, ignore=shutil.ignore_patterns("target"))
        if "workspace" not in tomllib.loads((plugin / "Cargo.toml").read_text(encoding="utf-8")):
            with (plugin / "Cargo.toml").open("a", encoding="utf-8") as handle:
                handle.write("\n[workspace]\n")  # the guest crate's paths stay relative
        flags = ["-C", f"link-arg=-zstack-size={STACK_BYTES}", f"--remap-path-prefix={sysroot}=/rustc"]
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("CARGO_", "RUSTC", "RUSTFLAGS", "RUSTDOCFLAGS"))}
        env.update(CARGO_HOME=str(work / "home"), CARGO_TARGET_DIR=str(work / "target"),
                   RUSTC=str(rustc), CARGO_ENCODED_RUSTFLAGS="\x1f".join(flags))
        try:
            done = subprocess.run(command(cargo, plugin / "Cargo.toml", plugin / GUEST_FOLDER),
                                  cwd=plugin, env=env, capture_output=True, text=True,
                                  timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"the compiler took longer than {COMPILE_TIMEOUT_S} s") from None
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip().replace(str(plugin), str(root))
            if not message:  # not a compiler's refusal: this cargo does not work at all
                raise ToolchainError(f"{cargo} exited with status {done.returncode} and said nothing: "
                                     f"set CMS_CARGO to a working cargo, or {INSTALL}")
            raise ToolchainError(f"{source}: compile failed:\n{message}")
        built = work / "target" / TARGET / "release" / f"{name}.wasm"
        if not built.is_file():
            raise ToolchainError(f"{root / 'Cargo.toml'}: cargo built no {name}.wasm: "
                                 'the library needs crate-type = ["cdylib"]')
        wasm = keep_exports(built.read_bytes(), KEEP_EXPORTS)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(wasm)
    return wasm


def _leb(data: bytes, at: int) -> tuple[int, int]:
    """(value, next offset) of the unsigned LEB128 at `at`."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def keep_exports(wasm: bytes, keep: frozenset[str]) -> bytes:
    """The module with its export section reduced to the names in `keep`."""
    out = bytearray(wasm[:8])
    at = 8
    while at < len(wasm):
        section_id = wasm[at]
        size, body = _leb(wasm, at + 1)
        end = body + size
        if section_id == 7:
            count, cursor = _leb(wasm, body)
            kept = []
            for _ in range(count):
                length, name_at = _leb(wasm, cursor)
                name = wasm[name_at:name_at + length].decode("utf-8")
                _, after = _leb(wasm, name_at + length + 1)  # kind byte, then the index
                if name in keep:
                    kept.append(wasm[cursor:after])
                cursor = after
            section = _uleb(len(kept)) + b"".join(kept)
            out += bytes([7]) + _uleb(len(section)) + section
        else:
            out += wasm[at:end]
        at = end
    return bytes(out)
