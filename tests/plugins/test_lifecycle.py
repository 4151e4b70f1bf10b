"""Plugin versions from upload to agents: signatures, the staging gate, capability approval,
canary cohorts, promotion, rollback, and the quarantine circuit breaker."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cms.app_state import state
from cms.audit import Actor
from cms.errors import ValidationFailed
from cms.extensions import db
from cms.models import AuditEvent, PluginInstall, PluginVersion, User
from cms.plugins import lifecycle
from plugin_sdk.package import build_package, generate_key, load_private_key
from tests.conftest import Browser, Personas
from tests.plugins.conftest import HERE
from tests.plugins.test_api import api, calls
from tests.runtime import guests
from tests.sdk.test_package import rezip

KEY = generate_key()
ADMIN = Actor(None, "ada.admin", None)
OK_VECTOR = {"name": "answers", "action": "call", "params": {"count": 1},
             "expect": {"ok": True, "result": {"count": 1}}}


def manifest(version: str, capabilities: list[str] | None = None) -> str:
    text = (HERE / "probe" / "plugin.toml").read_text()
    text = text.replace('version = "1.0.0"', f'version = "{version}"')
    if capabilities is not None:
        start = text.index("capabilities = [")
        end = text.index("]", start) + 1
        text = text[:start] + "capabilities = " + json.dumps(capabilities) + text[end:]
        text = text.replace('[http]\nallow = ["127.0.0.1"]\n', "")
    return text


def package(wasm: bytes, version: str, vectors: list[dict[str, Any]] | None = None,
            capabilities: list[str] | None = None, key: str = KEY[0]) -> bytes:
    from plugin_sdk.manifest import parse_manifest
    from plugin_sdk.project import built_manifest_text

    text = built_manifest_text(parse_manifest(manifest(version, capabilities)), "probe.wasm",
                               hashlib.sha256(wasm).hexdigest())
    files = {"v.json": json.dumps(vectors if vectors is not None else [OK_VECTOR]).encode()}
    return build_package(text, wasm, files, load_private_key(key))


@pytest.fixture
def trusted(app: Flask) -> None:
    with app.app_context():
        lifecycle.add_trusted_key(db.session, ADMIN, KEY[1], "Probe authors")


def upload(app: Flask, data: bytes) -> PluginVersion:
    with app.app_context():
        row = lifecycle.upload(db.session, ADMIN, data, state().runtime.config.caps,
                               state().runtime.config.artifact_dir, gate_calls=40)
        db.session.expunge(row)
        return row


def test_an_untrusted_unsigned_or_tampered_package_is_refused(app: Flask, probe_wasm: bytes) -> None:
    data = package(probe_wasm, "1.1.0")
    with pytest.raises(ValidationFailed, match="which is not a trusted author key"):
        upload(app, data)  # nobody trusts the key yet
    with app.app_context():
        lifecycle.add_trusted_key(db.session, ADMIN, KEY[1], "Probe authors")
    tampered = rezip(data, {"probe.wasm": probe_wasm + b"\0"})
    with pytest.raises(ValidationFailed, match="Package refused: package: probe.wasm does not match its checksum"):
        upload(app, tampered)
    with pytest.raises(ValidationFailed, match="not a .cmsplugin package"):
        upload(app, probe_wasm)  # a bare module is not a package
    with app.app_context():
        assert db.session.scalar(select(PluginVersion).where(PluginVersion.version == "1.1.0")) is None


def test_upload_runs_the_staging_gate(app: Flask, probe_wasm: bytes, trusted: None) -> None:
    row = upload(app, package(probe_wasm, "1.1.0"))
    assert row.gate_status == "passed" and row.signer_key_id
    assert row.gate_report["actions"]["call"]["fuel_p50"] > 0
    assert row.gate_report["vectors"] == [{"name": "tests/v.json: answers", "passed": True, "problem": None}]
    failing = upload(app, package(probe_wasm, "1.2.0", [{**OK_VECTOR, "expect": {"ok": True, "result": {"count": 2}}}]))
    assert failing.gate_status == "failed"
    assert "result.count: expected 2, got 1" in failing.gate_report["problems"][0]
    # 20 host calls per call where 1.1.0 made none: far more fuel per call.
    heavy = [{**OK_VECTOR, "params": {"count": 1, "calls": [{"op": "kv.get", "args": {"key": "k"}}] * 20}}]
    regressed = upload(app, package(probe_wasm, "1.3.0", heavy))
    assert regressed.gate_status == "passed"  # compared with the current version, 1.0.0
    with app.app_context():
        install = db.session.get(PluginInstall, "probe")
        install.version = "1.1.0"
        db.session.commit()
    worse = upload(app, package(probe_wasm, "1.4.0", heavy))
    assert worse.gate_status == "regressed"
    assert worse.gate_report["regressions"][0].startswith("call: fuel per call")


def test_a_blocked_version_needs_an_override_with_a_reason(app: Flask, probe_wasm: bytes, trusted: None) -> None:
    upload(app, package(probe_wasm, "1.2.0", [{**OK_VECTOR, "expect": {"ok": False}}]))
    release = lifecycle.Release("try it")
    with app.app_context():
        with pytest.raises(lifecycle.GateBlocked):
            lifecycle.promote(db.session, ADMIN, "probe", "1.2.0", release)
        install = lifecycle.promote(db.session, ADMIN, "probe", "1.2.0",
                                    lifecycle.Release("hotfix, vector is wrong", override_gate="vector expects the old answer"))
        assert install.version == "1.2.0" and install.previous_version == "1.0.0"
        assert lifecycle.get_version(db.session, "probe", "1.2.0").gate_override == "vector expects the old answer"


def test_new_capabilities_need_explicit_approval(app: Flask, probe_wasm: bytes, trusted: None) -> None:
    with app.app_context():
        install = db.session.get(PluginInstall, "probe")
        install.granted = ["kv", "log"]
        db.session.commit()
    upload(app, package(probe_wasm, "1.1.0", capabilities=["kv", "log", "mail.send"]))
    with app.app_context():
        with pytest.raises(lifecycle.ApprovalNeeded, match="new capabilities: mail.send"):
            lifecycle.set_canary(db.session, ADMIN, "probe", "1.1.0", 10, lifecycle.Release("canary"))
        db.session.rollback()
        install = lifecycle.set_canary(db.session, ADMIN, "probe", "1.1.0", 10,
                                       lifecycle.Release("canary", approve_capabilities=True))
        assert install.granted == ["kv", "log", "mail.send"]


def test_canary_cohorts_are_sticky_and_sized(app: Flask, probe_wasm: bytes, trusted: None) -> None:
    upload(app, package(probe_wasm, "1.1.0"))
    with app.app_context():
        install = lifecycle.set_canary(db.session, ADMIN, "probe", "1.1.0", 30, lifecycle.Release("canary 30"))
        served = [lifecycle.serving_version(db.session, install, uid).version for uid in range(1, 2001)]
        again = [lifecycle.serving_version(db.session, install, uid).version for uid in range(1, 2001)]
    assert served == again  # an agent never flips between versions
    share = served.count("1.1.0") / len(served)
    assert 0.25 < share < 0.35


def test_rollback_returns_to_the_last_good_version_and_is_audited(app: Flask, probe_wasm: bytes,
                                                                 trusted: None) -> None:
    upload(app, package(probe_wasm, "1.1.0"))
    with app.app_context():
        lifecycle.promote(db.session, ADMIN, "probe", "1.1.0", lifecycle.Release("ship it"))
        with pytest.raises(ValidationFailed, match="A reason"):
            lifecycle.rollback(db.session, ADMIN, "probe", "")
        install = lifecycle.rollback(db.session, ADMIN, "probe", "customers report errors")
        assert install.version == "1.0.0"
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("plugin.%"))
                                    .order_by(AuditEvent.id)).all()
        assert [e.action for e in events][-3:] == ["plugin.upload", "plugin.promote", "plugin.rollback"]
        assert events[-1].before["version"] == "1.1.0" and events[-1].after["version"] == "1.0.0"
        assert events[-1].after["reason"] == "customers report errors"


def test_repeated_faults_quarantine_the_version_and_agents_fall_back(
        app: Flask, personas: Personas, browser: Browser, probe_wasm: bytes, trusted: None,
        tmp_path: Path) -> None:
    trap = guests.returning("unreachable")  # every call traps
    upload(app, package(trap, "2.0.0", [{**OK_VECTOR, "expect": {"fault": "trap"}}]))
    with app.app_context():
        lifecycle.set_canary(db.session, ADMIN, "probe", "2.0.0", 100, lifecycle.Release("all in"),
                             notify=state().flags.changed)
    browser.login(personas.agent_a)
    token = browser.csrf("/clients")
    kinds = [browser.client.post("/api/plugins/probe/actions/call", json={"count": 1},
                                 headers={"X-CSRFToken": token}).get_json()["error"]["kind"]
             for _ in range(5)]
    assert kinds == ["trap"] * 5
    with app.app_context():
        row = lifecycle.get_version(db.session, "probe", "2.0.0")
        assert row.quarantined_at is not None and row.quarantine_reason.startswith("5 faults in 60 s (last: trap")
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "plugin.quarantine"))
        assert event is not None and event.actor_name == "circuit-breaker"
    # The sixth call is served by the current version again.
    response = api(browser, {"count": 6})
    assert response.status_code == 200 and response.get_json()["result"]["count"] == 6
    assert response.get_json()["stats"]["version"] == "1.0.0"
    # Only an admin releases it, with a reason.
    with app.app_context():
        with pytest.raises(ValidationFailed):
            lifecycle.release_quarantine(db.session, ADMIN, "probe", "2.0.0", "")
        lifecycle.release_quarantine(db.session, ADMIN, "probe", "2.0.0", "fixed upstream")
        assert lifecycle.get_version(db.session, "probe", "2.0.0").quarantined_at is None


def test_a_quarantine_with_nothing_to_fall_back_to_turns_the_plugin_off(
        app: Flask, personas: Personas, browser: Browser, trusted: None) -> None:
    trap = guests.returning("unreachable")
    upload(app, package(trap, "2.0.0", [{**OK_VECTOR, "expect": {"fault": "trap"}}]))
    with app.app_context():
        lifecycle.promote(db.session, ADMIN, "probe", "2.0.0", lifecycle.Release("oops", override_gate="x" * 3))
        lifecycle.quarantine(db.session, ADMIN, "probe", "2.0.0", "test")
        lifecycle.quarantine(db.session, ADMIN, "probe", "1.0.0", "test", notify=state().flags.changed)
    browser.login(personas.agent_a)
    response = api(browser, {})
    assert response.status_code == 404 and "quarantined" in response.get_json()["error"]["message"]
    page = browser.get("/").get_data(as_text=True)
    assert 'data-plugin-status="probe" data-state="failing"' in page


def test_admin_pages_upload_and_release(app: Flask, personas: Personas, probe_wasm: bytes,
                                        trusted: None) -> None:
    import io

    browser = Browser(app.test_client())
    browser.login(personas.admin)
    token = browser.csrf("/admin/plugins")
    response = browser.client.post("/admin/plugins", data={
        "csrf_token": token, "package": (io.BytesIO(package(probe_wasm, "1.1.0")), "probe.cmsplugin")},
        content_type="multipart/form-data")
    assert response.status_code == 303
    detail = browser.get("/admin/plugins/probe").get_data(as_text=True)
    assert "1.1.0" in detail and "passed" in detail
    bad = browser.client.post("/admin/plugins", data={
        "csrf_token": token, "package": (io.BytesIO(b"not a zip"), "x.cmsplugin")},
        content_type="multipart/form-data")
    assert bad.status_code == 422 and "not a .cmsplugin package" in bad.get_data(as_text=True)
    missing_reason = browser.post("/admin/plugins/probe/release", {"version": "1.1.0", "percent": "10",
                                                                    "do": "canary", "reason": ""},
                                  csrf_page="/admin/plugins/probe")
    assert missing_reason.status_code == 422
    ok = browser.post("/admin/plugins/probe/release", {"version": "1.1.0", "percent": "10", "do": "canary",
                                                       "reason": "try on 10 %"}, csrf_page="/admin/plugins/probe")
    assert ok.status_code == 303
    with app.app_context():
        install = db.session.get(PluginInstall, "probe")
        assert (install.canary_version, install.canary_percent) == ("1.1.0", 10)


def test_bundled_versions_get_a_baseline_so_uploads_can_regress_against_them(
        app: Flask, probe_wasm: bytes, trusted: None) -> None:
    with app.app_context():
        row = lifecycle.get_version(db.session, "probe", "1.0.0")
        row.vectors = {"tests/v.json": json.dumps([OK_VECTOR])}
        db.session.commit()
        measured = lifecycle.measure_bundled(db.session, state().runtime.config.caps,
                                             state().runtime.config.artifact_dir, gate_calls=40)
        assert [m.version for m in measured] == ["1.0.0"]
        assert lifecycle.get_version(db.session, "probe", "1.0.0").gate_report["actions"]["call"]["fuel_p50"] > 0
        assert lifecycle.measure_bundled(db.session, state().runtime.config.caps,
                                         state().runtime.config.artifact_dir) == []  # once
    heavy = [{**OK_VECTOR, "params": {"count": 1, "calls": [{"op": "kv.get", "args": {"key": "k"}}] * 20}}]
    assert upload(app, package(probe_wasm, "1.1.0", heavy)).gate_status == "regressed"
