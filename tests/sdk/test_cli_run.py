"""`cms-plugin run`: output on success, exit 3 with a typed fault, exit 2 with one line on misuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_sdk.cli import main
from tests.runtime import guests
from tests.runtime.test_faults import SPIN
from tests.runtime.test_growwatch import GROW_UNCHECKED_THEN


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    path = tmp_path / "echo.wasm"
    path.write_bytes(guests.module())
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_success_prints_the_output_json(capsys: pytest.CaptureFixture[str], echo: Path) -> None:
    code, out, err = run(capsys, str(echo), "--action", "greet", "--params", '{"name": "Zoë"}',
                         "--context", '{"agent": {"id": 3}}')
    assert code == 0
    assert json.loads(out) == {"ok": True, "echo": {"abi": 1, "action": "greet",
                                                   "params": {"name": "Zoë"},
                                                   "context": {"agent": {"id": 3}}}}
    assert "fuel" in err and "host calls" in err


def test_input_gives_the_whole_envelope(capsys: pytest.CaptureFixture[str], echo: Path,
                                        tmp_path: Path) -> None:
    envelope = {"abi": 1, "action": "x", "params": {"a": [1, 2]}, "context": {}}
    (tmp_path / "in.json").write_text(json.dumps(envelope))
    code, out, _ = run(capsys, str(echo), "--input", f"@{tmp_path / 'in.json'}", "--json")
    assert code == 0 and json.loads(out)["echo"] == envelope


def test_a_fault_exits_3_with_kind_and_stats_in_json(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    spin = tmp_path / "spin.wasm"
    spin.write_bytes(guests.module(handle=SPIN))
    code, out, _ = run(capsys, str(spin), "--fuel", "100000", "--json")
    assert code == 3
    report = json.loads(out)
    assert report["error"]["kind"] == "fuel_exhausted"
    assert report["stats"]["fuel_consumed"] == 100_000
    assert set(report["stats"]) == {"plugin_id", "version", "fuel_consumed", "peak_memory_bytes",
                                    "wall_ms", "host_calls", "refused_memory_bytes",
                                    "refused_table_elements"}


def test_garbage_after_a_refused_grow_is_reported_as_memory(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    wasm = tmp_path / "unchecked.wasm"
    wasm.write_bytes(guests.module(handle=GROW_UNCHECKED_THEN.format(then="(i64.const 16)"),
                                   data=b"\xff" * 16))
    code, out, err = run(capsys, str(wasm), "--memory-mb", "4")
    assert code == 3 and out == ""
    assert err.startswith("plugin fault: memory_limit: memory limit reached (a grow to 8.1 MiB "
                          "was refused); then: output is not JSON")
    code, out, _ = run(capsys, str(wasm), "--memory-mb", "4", "--json")
    assert json.loads(out)["stats"]["refused_memory_bytes"] == 129 * 65536


def test_a_fault_without_json_is_one_readable_line(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    spin = tmp_path / "spin.wasm"
    spin.write_bytes(guests.module(handle=SPIN))
    code, out, err = run(capsys, str(spin), "--timeout-ms", "30", "--fuel", "1000000000")
    assert code == 3 and out == ""
    assert err == "plugin fault: timeout: the plugin ran past its wall-clock deadline\n"


def test_an_abi_violation_is_a_plugin_fault(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(guests.module(imports='(import "env" "system" (func (param i32) (result i32)))'))
    code, _, err = run(capsys, str(bad))
    assert code == 3 and err.startswith("plugin fault: abi_violation: imports env.system")


@pytest.mark.parametrize("args, message", [
    (["/no/such.wasm"], "/no/such.wasm: no such file"),
    (["{notwasm}"], "not a WebAssembly module (no \\0asm header)"),
    (["{truncated}"], "not a valid WebAssembly module"),
    (["{echo}", "--params", "{bad"], "--params is not valid JSON"),
    (["{echo}", "--params", "[1]"], "--params and --context must be JSON objects"),
    (["{echo}", "--input", '{"abi": 2, "action": "x"}'], '--input: input must have "abi": 1'),
    (["{echo}", "--input", "@/no/such.json"], "--input: cannot read /no/such.json"),
    (["{echo}", "--memory-mb", "500"], "'--memory-mb': 500 is not in the range 1<=x<=128"),
    (["{echo}", "--action", ""], "action must be a non-empty string"),
    (["{echo}", "--bogus"], "No such option '--bogus'"),
    ([], "Missing argument 'MODULE'"),
], ids=["missing-file", "not-wasm", "truncated-wasm", "bad-json", "params-not-object",
        "bad-envelope", "missing-input-file", "memory-too-large", "empty-action", "unknown-option",
        "no-module"])
def test_bad_usage_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         echo: Path, args: list[str], message: str) -> None:
    (tmp_path / "notwasm").write_text("hello")
    (tmp_path / "truncated").write_bytes(guests.module()[:40])
    names = {"{echo}": echo, "{notwasm}": tmp_path / "notwasm", "{truncated}": tmp_path / "truncated"}
    args = [str(names.get(a, a)) for a in args]
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("cms-plugin: ")
    assert message in err


def test_help_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--action", "--params", "--input", "--fuel", "--memory-mb", "--timeout-ms", "--json"):
        assert option in help_text


def test_the_installed_entry_point(echo: Path) -> None:
    script = Path(sys.executable).with_name("cms-plugin")
    done = subprocess.run([str(script), "run", str(echo), "--action", "ping", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["echo"]["action"] == "ping"
    done = subprocess.run([str(script), "run", str(echo) + ".missing"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().endswith("no such file")
    done = subprocess.run([str(script), "run", str(echo), "--fuel", "10"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr == "plugin fault: fuel_exhausted: the plugin used all of its fuel\n"
