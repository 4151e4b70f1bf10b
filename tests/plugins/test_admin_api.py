"""The plugin admin API and `cms-plugin publish` against a live server with an admin token."""

from __future__ import annotations

from dataclasses import replace

import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from cms.audit import Actor
from cms.auth.tokens import create_token
from cms.extensions import db
from cms.models import PluginInstall
from plugin_sdk.cli import main
from tests.conftest import Personas
from tests.plugins.test_lifecycle import KEY, package, trusted  # noqa: F401  (fixture)
from tests.sdk.test_package import rezip


@pytest.fixture
def live(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def token(app: Flask, personas: Personas) -> str:
    with app.app_context():
        return create_token(db.session, Actor(None, "cli", None), personas.admin)[1]


def publish(capsys: pytest.CaptureFixture[str], path: Path, url: str, token: str) -> tuple[int, Any, str]:
    code = main(["publish", str(path), "--url", url, "--token", token, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_publish_then_release_through_the_api(app: Flask, live: str, token: str, trusted: None,
                                             probe_wasm: bytes, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "probe-1.1.0.cmsplugin"
    path.write_bytes(package(probe_wasm, "1.1.0"))
    code, body, err = publish(capsys, path, live, token)
    assert code == 0, err
    assert body["plugin_id"] == "probe" and body["version"] == "1.1.0" and body["gate_status"] == "passed"
    # The same version again: refused, one line, exit 2.
    code, body, err = publish(capsys, path, live, token)
    assert code == 2 and body is None
    assert err.startswith("cms-plugin: the server refused the package (HTTP 409): probe 1.1.0 was already uploaded")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    response = client.post("/api/admin/plugins/probe/canary", headers=auth,
                           json={"version": "1.1.0", "percent": 25, "reason": "try it"})
    assert response.status_code == 200 and response.get_json()["canary_percent"] == 25
    assert client.post("/api/admin/plugins/probe/promote", headers=auth,
                       json={"version": "1.1.0"}).status_code == 422  # no reason
    # A running canary is promoted only after its minimum calls without a regression.
    early = client.post("/api/admin/plugins/probe/promote", headers=auth,
                        json={"version": "1.1.0", "reason": "ship"})
    assert early.status_code == 409
    assert "has run 0 of the 100 calls it needs without a regression" in early.get_json()["error"]["message"]
    listed = client.get("/api/admin/plugins", headers=auth).get_json()["plugins"]
    assert listed[0]["canary"] == {"calls": 0, "min_calls": 100, "promotable": False,
                                   "regression": None, "signals": {}}
    monitor = app.extensions["monitoring"]
    monitor.settings = replace(monitor.settings, canary_min_calls=0)
    assert client.post("/api/admin/plugins/probe/promote", headers=auth,
                       json={"version": "1.1.0", "reason": "ship"}).get_json()["version"] == "1.1.0"
    rolled = client.post("/api/admin/plugins/probe/rollback", headers=auth, json={"reason": "errors"})
    assert rolled.status_code == 200 and rolled.get_json()["version"] == "1.0.0"
    listed = client.get("/api/admin/plugins", headers=auth).get_json()["plugins"]
    assert [v["version"] for v in listed[0]["versions"]] == ["1.1.0", "1.0.0"]


def test_publish_refusals(app: Flask, live: str, token: str, trusted: None, probe_wasm: bytes,
                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = package(probe_wasm, "1.2.0")
    tampered = tmp_path / "t.cmsplugin"
    tampered.write_bytes(rezip(good, {"probe.wasm": probe_wasm + b"\0"}))
    code, _, err = publish(capsys, tampered, live, token)
    assert code == 2 and "probe.wasm does not match its checksum" in err and err.count("\n") == 1
    from plugin_sdk.package import generate_key
    stranger = tmp_path / "s.cmsplugin"
    stranger.write_bytes(package(probe_wasm, "1.2.0", key=generate_key()[0]))
    code, _, err = publish(capsys, stranger, live, token)
    assert code == 2 and "(HTTP 422)" in err and "not a trusted author key" in err
    path = tmp_path / "g.cmsplugin"
    path.write_bytes(good)
    code, _, err = publish(capsys, path, live, "cms_wrong")
    assert code == 2 and "(HTTP 401)" in err
    code, _, err = publish(capsys, path, "http://127.0.0.1:9", token)
    assert code == 2 and err.startswith("cms-plugin: cannot reach http://127.0.0.1:9")
    with app.app_context():
        assert db.session.get(PluginInstall, "probe").version == "1.0.0"


def test_a_failing_gate_exits_1(app: Flask, live: str, token: str, trusted: None, probe_wasm: bytes,
                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.cmsplugin"
    path.write_bytes(package(probe_wasm, "1.3.0", [{"name": "wrong", "action": "call",
                                                    "expect": {"ok": False}}]))
    code, body, _ = publish(capsys, path, live, token)
    assert code == 1 and body["gate_status"] == "failed"
