"""Signed .cmsplugin packages: reproducible, verified, and any tampering is caught and named."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from plugin_sdk.package import (PackageError, build_package, generate_key, key_id, load_private_key,
                                read_package, write_key_pair)
from tests.runtime import guests
from tests.sdk.factories import manifest_text

WASM = guests.module()
VECTORS = {"v.json": b'{"name": "a", "action": "widget", "expect": {"ok": true}}'}


def built_manifest(wasm: bytes = WASM) -> str:
    text = manifest_text({'[build]\nlang = "zig"\nsource = "src/main.zig"\n': ""})
    return text + f'\n[module]\nfile = "hello.wasm"\nsha256 = "{hashlib.sha256(wasm).hexdigest()}"\n'


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_key()


@pytest.fixture
def package(keys: tuple[str, str]) -> bytes:
    return build_package(built_manifest(), WASM, VECTORS, load_private_key(keys[0]))


def rezip(data: bytes, change: dict[str, bytes | None]) -> bytes:
    """The archive with entries replaced (bytes), removed (None) or added."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info in source.infolist():
            if info.filename in change:
                if change[info.filename] is not None:
                    archive.writestr(info.filename, change[info.filename])  # type: ignore[arg-type]
            else:
                archive.writestr(info, source.read(info))
        for name, value in change.items():
            if name not in source.namelist() and value is not None:
                archive.writestr(name, value)
    return out.getvalue()


def test_a_package_verifies_and_opens(package: bytes, keys: tuple[str, str]) -> None:
    opened = read_package(package, trusted_keys=[keys[1]])
    assert opened.manifest.id == "hello" and opened.wasm == WASM
    assert opened.key_id == key_id(keys[1])
    assert opened.vector_files() == {"tests/v.json": VECTORS["v.json"].decode()}
    names = zipfile.ZipFile(io.BytesIO(package)).namelist()
    assert names == ["plugin.toml", "hello.wasm", "tests/v.json", "CHECKSUMS", "SIGNATURE"]


def test_packages_are_reproducible(keys: tuple[str, str]) -> None:
    key = load_private_key(keys[0])
    assert build_package(built_manifest(), WASM, VECTORS, key) == build_package(
        built_manifest(), WASM, VECTORS, key)


@pytest.mark.parametrize(("change", "message"), [
    ({"hello.wasm": WASM + b"\0"}, "hello.wasm does not match its checksum: the package was changed"),
    ({"plugin.toml": built_manifest().replace('"log", "kv"', '"log", "kv", "mail.send"').encode()},
     "plugin.toml does not match its checksum"),
    ({"tests/evil.json": b"[]"}, "tests/evil.json is not in CHECKSUMS"),
    ({"CHECKSUMS": b"0" * 64 + b"  hello.wasm\n"}, "the signature does not match"),
    ({"SIGNATURE": None}, "missing SIGNATURE"),
    ({"SIGNATURE": b"{}"}, "SIGNATURE must name algorithm ed25519"),
    ({"../../etc/cron.d/x": b"boom"}, "unsafe or repeated entry '../../etc/cron.d/x'"),
])
def test_tampering_is_caught(package: bytes, change: dict[str, bytes | None], message: str) -> None:
    with pytest.raises(PackageError) as raised:
        read_package(rezip(package, change), source="p.cmsplugin")
    assert str(raised.value).startswith("p.cmsplugin: ") and message in str(raised.value)


def test_resigning_with_another_key_is_caught_by_trusted_keys(keys: tuple[str, str]) -> None:
    other_private, other_public = generate_key()
    evil = build_package(built_manifest(), WASM, VECTORS, load_private_key(other_private))
    assert read_package(evil).key_id == key_id(other_public)  # valid, but by whom?
    with pytest.raises(PackageError, match=f"signed by key {key_id(other_public)}, which is not a "
                                           "trusted author key"):
        read_package(evil, trusted_keys=[keys[1]])


def test_a_manifest_that_does_not_describe_the_module_cannot_be_packaged(keys: tuple[str, str]) -> None:
    with pytest.raises(PackageError, match="does not match the sha256 in the manifest"):
        build_package(built_manifest(), WASM + b"x", VECTORS, load_private_key(keys[0]))


def test_not_a_zip_and_bad_keys_are_clear() -> None:
    with pytest.raises(PackageError, match=r"^x: not a .cmsplugin package \(not a zip archive\)$"):
        read_package(b"hello", source="x")
    private, public = generate_key()
    with pytest.raises(PackageError, match="a public key; expected a private key"):
        load_private_key(public, "author.pub")
    with pytest.raises(PackageError, match="the private key is damaged"):
        load_private_key(private[:-8] + "!!!!!!!!", "author.key")


def test_key_pairs_are_private_and_never_overwritten(tmp_path: Path) -> None:
    private, public = write_key_pair(tmp_path, "author")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert load_private_key(private.read_text()) is not None
    before = private.read_text()
    with pytest.raises(PackageError, match="already exists; use --force"):
        write_key_pair(tmp_path, "author")
    assert private.read_text() == before
    write_key_pair(tmp_path, "author", force=True)
    assert private.read_text() != before and public.read_text().startswith("cms-plugin-ed25519:")
