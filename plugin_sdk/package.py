"""`.cmsplugin` packages: one signed archive with a built plugin. Format defined once, here.

A package is a zip with, in this order: `plugin.toml` (the built manifest, with the module's
sha256), the module `<id>.wasm`, the test vectors `tests/*.json`, `CHECKSUMS` (`<sha256>  <name>`
per file, sorted) and `SIGNATURE` (JSON: algorithm "ed25519", key_id, public_key, signature over
the CHECKSUMS bytes). Archives are byte-for-byte reproducible (fixed times, sorted names).
Keys are ed25519; `generate_key` makes a pair, saved as one line of text each.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat,
                                                          PublicFormat)

from plugin_sdk.manifest import MANIFEST_NAME, Manifest, ManifestError, parse_manifest

SUFFIX = ".cmsplugin"
CHECKSUMS = "CHECKSUMS"
SIGNATURE = "SIGNATURE"
ALGORITHM = "ed25519"
PRIVATE_PREFIX = "cms-plugin-ed25519-private:"
PUBLIC_PREFIX = "cms-plugin-ed25519:"
MAX_PACKAGE_BYTES = 16 * 1024 * 1024
MAX_FILES = 200
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class PackageError(ValueError):
    """A package or key that cannot be trusted or read; `str()` says exactly why."""


@dataclass(frozen=True)
class Package:
    """A verified package: its manifest, module bytes, files, and the key that signed it."""

    manifest: Manifest
    wasm: bytes
    files: Mapping[str, bytes]
    key_id: str
    public_key: str

    def vector_files(self) -> dict[str, str]:
        """tests/*.json files by name, as text."""
        return {name: data.decode("utf-8") for name, data in sorted(self.files.items())
                if name.startswith("tests/") and name.endswith(".json")}


# Keys -----------------------------------------------------------------------------------------

def generate_key() -> tuple[str, str]:
    """A new key pair as (private line, public line)."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (PRIVATE_PREFIX + base64.b64encode(seed).decode(),
            PUBLIC_PREFIX + base64.b64encode(public).decode())


def key_id(public_line: str) -> str:
    """A short, stable id of a public key: 16 hex digits of its sha256."""
    return hashlib.sha256(_public_bytes(public_line)).hexdigest()[:16]


def load_private_key(text: str, source: str = "key") -> Ed25519PrivateKey:
    """The private key in `text` (a line from `generate_key`); raises PackageError."""
    text = text.strip()
    if not text.startswith(PRIVATE_PREFIX):
        kind = "a public key" if text.startswith(PUBLIC_PREFIX) else "not a cms-plugin key"
        raise PackageError(f"{source}: {kind}; expected a private key made by cms-plugin keygen")
    try:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text[len(PRIVATE_PREFIX):],
                                                                     validate=True))
    except ValueError:
        raise PackageError(f"{source}: the private key is damaged") from None


def public_line_of(key: Ed25519PrivateKey) -> str:
    return PUBLIC_PREFIX + base64.b64encode(
        key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _public_bytes(line: str) -> bytes:
    line = line.strip()
    if not line.startswith(PUBLIC_PREFIX):
        raise PackageError("expected a public key line starting with " + PUBLIC_PREFIX)
    try:
        raw = base64.b64decode(line[len(PUBLIC_PREFIX):], validate=True)
    except ValueError:
        raise PackageError("the public key is not valid base64") from None
    if len(raw) != 32:
        raise PackageError("the public key is not 32 bytes")
    return raw


def write_key_pair(directory: Path, name: str, *, force: bool = False) -> tuple[Path, Path]:
    """Write NAME.key (mode 0600) and NAME.pub into `directory`; raises PackageError when they
    exist and `force` is not set (an author's key is never overwritten by accident)."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    if not force and (private_path.exists() or public_path.exists()):
        raise PackageError(f"{private_path} already exists; use --force to replace it")
    private, public = generate_key()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(private + "\n")
    os.chmod(private_path, 0o600)
    public_path.write_text(public + "\n")
    return private_path, public_path


# Packing --------------------------------------------------------------------------------------

def _checksums(files: Mapping[str, bytes]) -> bytes:
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                   for name, data in sorted(files.items())).encode()


def build_package(manifest_text: str, wasm: bytes, vectors: Mapping[str, bytes],
                  key: Ed25519PrivateKey) -> bytes:
    """The signed archive's bytes. `manifest_text` is the built manifest (with [module]).

    Raises PackageError when the manifest does not describe `wasm`.
    """
    manifest = parse_manifest(manifest_text, MANIFEST_NAME)
    if manifest.module_file is None or manifest.module_sha256 is None:
        raise PackageError("the manifest has no [module]: run cms-plugin build first")
    if hashlib.sha256(wasm).hexdigest() != manifest.module_sha256:
        raise PackageError(f"{manifest.module_file} does not match the sha256 in the manifest: "
                           "run cms-plugin build again")
    files = {MANIFEST_NAME: manifest_text.encode("utf-8"), manifest.module_file: wasm,
             **{f"tests/{Path(name).name}": data for name, data in vectors.items()}}
    checksums = _checksums(files)
    public = public_line_of(key)
    signature = json.dumps({"algorithm": ALGORITHM, "key_id": key_id(public), "public_key": public,
                            "signature": base64.b64encode(key.sign(checksums)).decode()},
                           indent=2).encode() + b"\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        order = [MANIFEST_NAME, manifest.module_file] + sorted(n for n in files if n.startswith("tests/"))
        for name, data in [(n, files[n]) for n in order] + [(CHECKSUMS, checksums),
                                                             (SIGNATURE, signature)]:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def read_package(data: bytes, trusted_keys: Iterable[str] | None = None,
                 source: str = "package") -> Package:
    """Verify and open a package: archive shape, checksums, signature, manifest, module sha256.

    With `trusted_keys` (public key lines), the signer must be one of them. Raises PackageError.
    """
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageError(f"{source}: {len(data):,} bytes; a package may have at most "
                           f"{MAX_PACKAGE_BYTES:,}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise PackageError(f"{source}: not a {SUFFIX} package (not a zip archive)") from None
    if len(infos) > MAX_FILES:
        raise PackageError(f"{source}: {len(infos)} files; at most {MAX_FILES}")
    total = sum(info.file_size for info in infos)
    if total > MAX_PACKAGE_BYTES:
        raise PackageError(f"{source}: unpacks to {total:,} bytes; at most {MAX_PACKAGE_BYTES:,}")
    files: dict[str, bytes] = {}
    for info in infos:
        name = info.filename
        if (name.startswith("/") or "\\" in name or ".." in name.split("/") or info.is_dir()
                or name in files):
            raise PackageError(f"{source}: unsafe or repeated entry {name!r}")
        try:
            files[name] = archive.read(info)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            raise PackageError(f"{source}: entry {name!r} is damaged ({exc})") from None
    for needed in (MANIFEST_NAME, CHECKSUMS, SIGNATURE):
        if needed not in files:
            raise PackageError(f"{source}: missing {needed}")
    signature = _signature(files.pop(SIGNATURE), source)
    checksums = files.pop(CHECKSUMS)
    public = signature["public_key"]
    try:
        Ed25519PublicKey.from_public_bytes(_public_bytes(public)).verify(
            base64.b64decode(signature["signature"], validate=True), checksums)
    except (InvalidSignature, ValueError):
        raise PackageError(f"{source}: the signature does not match: the package was changed "
                           "after it was signed, or signed with another key") from None
    if checksums != _checksums(files):
        listed = {line.split("  ", 1)[1] for line in checksums.decode(errors="replace").splitlines()
                  if "  " in line}
        extra = sorted(set(files) - listed)
        changed = sorted(n for n in files if n in listed and
                         f"{hashlib.sha256(files[n]).hexdigest()}  {n}" not in checksums.decode())
        what = (f"{extra[0]} is not in CHECKSUMS" if extra else
                f"{changed[0]} does not match its checksum" if changed else "files are missing")
        raise PackageError(f"{source}: {what}: the package was changed after it was signed")
    if trusted_keys is not None:
        trusted = {key_id(line) for line in trusted_keys}
        if key_id(public) not in trusted:
            raise PackageError(f"{source}: signed by key {key_id(public)}, which is not a trusted "
                               "author key")
    try:
        manifest = parse_manifest(files[MANIFEST_NAME].decode("utf-8"), f"{source}:{MANIFEST_NAME}")
    except UnicodeDecodeError:
        raise PackageError(f"{source}: {MANIFEST_NAME} is not UTF-8") from None
    except ManifestError as exc:
        raise PackageError(str(exc)) from None
    if manifest.module_file is None or manifest.module_file not in files:
        raise PackageError(f"{source}: the manifest names no module, or the module is missing")
    wasm = files[manifest.module_file]
    if hashlib.sha256(wasm).hexdigest() != manifest.module_sha256:
        raise PackageError(f"{source}: {manifest.module_file} does not match module.sha256")
    return Package(manifest, wasm, files, key_id(public), public)


def _signature(data: bytes, source: str) -> dict[str, str]:
    try:
        value = json.loads(data)
    except ValueError:
        raise PackageError(f"{source}: SIGNATURE is not JSON") from None
    if (not isinstance(value, dict) or value.get("algorithm") != ALGORITHM
            or not all(isinstance(value.get(k), str) for k in ("public_key", "signature"))):
        raise PackageError(f"{source}: SIGNATURE must name algorithm ed25519, public_key and "
                           "signature")
    return value
