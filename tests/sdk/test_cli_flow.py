"""The author's path through `cms-plugin`: new -> build -> check -> test -> keygen -> package, in
Zig and in C, and the ways it refuses: a leak, an undeclared capability, a bad manifest, a
tampered package, a build that is not reproducible."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from plugin_sdk.cli import cli, main
from plugin_sdk.toolchain import zig_available
from tests.conftest import require

FIXTURES = Path(__file__).parent / "plugins"
COMMANDS = ["new", "build", "check", "test", "keygen", "package", "publish", "run"]


@pytest.fixture(autouse=True)
def _homes(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.getbasetemp() / "home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))


def cms(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def cms_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out, err = cms(capsys, *args, "--json")
    assert out.count("\n") == 1, out + err  # exactly one JSON object
    return code, json.loads(out)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help(command: str | None) -> None:
    result = CliRunner().invoke(cli, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: cli " + (command + " " if command else ""))
    if command:
        assert "--json" in result.output
    else:
        assert all(c in result.output for c in COMMANDS)


@pytest.fixture(scope="module", params=["zig", "c"])
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new plugin in each language, built once for the module."""
    require(zig_available(), "the ziglang package (pip install 'cms[sdk]')")
    parent = tmp_path_factory.mktemp(f"authors-{request.param}")
    assert main(["new", "Hello World", "--lang", request.param, "--dir", str(parent)]) == 0
    folder = parent / "hello-world"
    assert main(["build", str(folder)]) == 0
    return folder


def test_new_makes_a_complete_plugin(made: Path) -> None:
    names = {str(p.relative_to(made)) for p in made.rglob("*") if p.is_file()}
    assert {"plugin.toml", "README.md", ".gitignore"} <= names
    assert any(n.startswith("src/main.") for n in names)
    assert any(n.startswith("tests/") and n.endswith(".json") for n in names)
    manifest = (made / "plugin.toml").read_text()
    assert 'id = "hello-world"' in manifest and 'name = "Hello World"' in manifest


def test_build_writes_module_manifest_with_sha256_and_vectors(made: Path) -> None:
    import hashlib

    from plugin_sdk.manifest import load_manifest

    dist = made / "dist"
    wasm = (dist / "hello-world.wasm").read_bytes()
    built = load_manifest(dist)
    assert built.module_file == "hello-world.wasm"
    assert built.module_sha256 == hashlib.sha256(wasm).hexdigest()
    assert built.build_lang is None  # the built manifest describes the module, not the source
    assert sorted(p.name for p in (dist / "tests").glob("*.json")) == sorted(
        p.name for p in (made / "tests").glob("*.json"))


def test_check_passes_and_reports_the_module(capsys: pytest.CaptureFixture[str], made: Path) -> None:
    code, report = cms_json(capsys, "check", made)
    assert code == 0, report
    assert report["ok"] is True and report["problems"] == []
    assert report["facts"]["ops"] == ["kv.get", "kv.set"]
    assert "cms.call" in report["facts"]["imports"] and "cms.log" in report["facts"]["imports"]
    assert report["facts"]["limits"]["memory_mb"] >= 1


def test_test_runs_vectors_chaos_and_soak(capsys: pytest.CaptureFixture[str], made: Path) -> None:
    code, report = cms_json(capsys, "test", made, "--chaos", "--soak", "300")
    assert code == 0, report["failures"]
    assert report["ok"] and all(v["passed"] for v in report["vectors"])
    assert len(report["vectors"]) >= 5
    assert report["chaos"] and all(c["passed"] for c in report["chaos"])
    soak = {s["action"]: s for s in report["soak"]}
    assert set(soak) == {"widget", "greet"}
    assert all(s["calls"] == 300 and s["problem"] is None and s["fuel_p50"] > 0 for s in soak.values())


def test_test_prints_a_table_for_people(capsys: pytest.CaptureFixture[str], made: Path) -> None:
    code, out, _ = cms(capsys, "test", made, "--soak", "50")
    assert code == 0
    for text in ("soak: 50 calls per action", "fuel p50", "peak memory", "steady", "vectors passed"):
        assert text in out


def test_keygen_package_and_verify(capsys: pytest.CaptureFixture[str], made: Path,
                                   tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    code, made_keys = cms_json(capsys, "keygen", "--dir", keys)
    assert code == 0
    code, packed = cms_json(capsys, "package", made, "--key", made_keys["private_key"])
    assert code == 0 and packed["key_id"] == made_keys["key_id"]
    package = Path(packed["package"])
    assert package.name == "hello-world-0.1.0.cmsplugin"
    code, report = cms_json(capsys, "check", package, "--trusted-key", made_keys["public_key"])
    assert code == 0 and report["facts"]["signed_by"] == made_keys["key_id"]
    code, report = cms_json(capsys, "test", package, "--soak", "0")
    assert code == 0 and report["ok"]

    # The same package with one byte of the module changed: refused, on one line, exit 2.
    tampered = tmp_path / "tampered.cmsplugin"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".wasm"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(info, data)
    code, out, err = cms(capsys, "check", tampered)
    assert code == 2 and out == ""
    assert err == (f"cms-plugin: {tampered}: hello-world.wasm does not match its checksum: the "
                   "package was changed after it was signed\n")
    # Signed by someone else: valid signature, untrusted key.
    other = tmp_path / "other"
    cms(capsys, "keygen", "--dir", other)
    code, _, err = cms(capsys, "check", package, "--trusted-key", other / "author.pub")
    assert code == 2 and "which is not a trusted author key" in err


def test_builds_are_reproducible_and_verifiable(capsys: pytest.CaptureFixture[str], made: Path,
                                                tmp_path: Path) -> None:
    code, result = cms_json(capsys, "build", made, "--check-reproducible", "--out", tmp_path / "out")
    assert code == 0 and result["reproducible"] is True
    assert (tmp_path / "out" / "hello-world.wasm").read_bytes() == (made / "dist" / "hello-world.wasm").read_bytes()
    code, result = cms_json(capsys, "build", made, "--verify")
    assert code == 0 and result["unchanged"] is True
    copy = tmp_path / "changed"
    shutil.copytree(made, copy)
    source = next((copy / "src").glob("main.*"))
    source.write_text(source.read_text().replace("Hello, ", "Howdy, "))
    code, result = cms_json(capsys, "build", copy, "--verify")
    assert code == 1 and result["unchanged"] is False


def test_an_undeclared_capability_is_refused_by_check(capsys: pytest.CaptureFixture[str],
                                                      made: Path, tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky"
    shutil.copytree(made, sneaky)
    manifest = sneaky / "plugin.toml"
    manifest.write_text(manifest.read_text().replace('capabilities = ["log", "kv"]',
                                                     'capabilities = ["log"]'))
    assert cms(capsys, "build", sneaky)[0] == 0
    code, report = cms_json(capsys, "check", sneaky)
    assert code == 1 and report["ok"] is False
    assert ("the module calls host op 'kv.get', which needs capability 'kv'; plugin.toml does not "
            "request it") in report["problems"]
    # ...and at run time the sandbox refuses the call itself.
    assert any("fault capability_denied" in p and "'kv'" in p for p in report["problems"])


def test_a_stale_build_is_reported(capsys: pytest.CaptureFixture[str], made: Path, tmp_path: Path) -> None:
    copy = tmp_path / "stale"
    shutil.copytree(made, copy)
    manifest = copy / "plugin.toml"
    manifest.write_text(manifest.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    code, report = cms_json(capsys, "check", copy)
    assert code == 1 and any("is older than" in p for p in report["problems"])


def test_a_leaking_plugin_fails_the_soak(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require(zig_available(), "the ziglang package (pip install 'cms[sdk]')")
    leaky = tmp_path / "leaky"
    shutil.copytree(FIXTURES / "leaky", leaky)
    assert cms(capsys, "build", leaky)[0] == 0
    code, report = cms_json(capsys, "test", leaky, "--soak", "200")
    assert code == 1
    assert all(v["passed"] for v in report["vectors"])  # its vectors pass: only the soak sees it
    (soak,) = report["soak"]
    assert soak["problem"].startswith("leak: peak memory per call grew")
    assert soak["memory_growth"] > 1.1
    assert report["failures"] == [f"soak remember: {soak['problem']}"]


@pytest.mark.parametrize(("args", "message"), [
    (["build", "{missing}"], "{missing}: no such folder"),
    (["new", "9lives", "--dir", "{tmp}"], "'9lives' does not make a plugin id"),
    (["check", "{tmp}"], "plugin.toml: no such file"),
    (["package", "{tmp}", "--key", "{missing}"], "{missing}: no such key: run cms-plugin keygen first"),
    (["test", "{bad}"], "plugin.toml: limits.memory_mb: expected an integer from 1 to 128, got the integer 4096"),
    (["build", "{bad}"], "plugin.toml: limits.memory_mb: expected an integer from 1 to 128, got the integer 4096"),
    (["check", "{unbuilt}"], "not built yet: run cms-plugin build"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              args: list[str], message: str) -> None:
    from tests.sdk.factories import manifest_text

    bad, unbuilt = tmp_path / "bad", tmp_path / "unbuilt"
    bad.mkdir()
    (bad / "plugin.toml").write_text(manifest_text({"memory_mb = 4": "memory_mb = 4096"}))
    unbuilt.mkdir()
    (unbuilt / "plugin.toml").write_text(manifest_text())
    names = {"{missing}": str(tmp_path / "missing"), "{tmp}": str(tmp_path), "{bad}": str(bad),
             "{unbuilt}": str(unbuilt)}
    args = [names.get(a, a) for a in args]
    message = message.replace("{missing}", names["{missing}"])
    code, out, err = cms(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("cms-plugin: ") and message in err
