"""Guarded canaries: a canary is compared while it runs with the current version; one that
regresses is rolled back at once (alert, audit, metric); one that does not can be promoted once
it has run its minimum number of calls."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from cms.audit import Actor
from cms.app_state import state
from cms.extensions import db
from cms.models import Agency, AuditEvent, User
from cms.plugins import lifecycle
from cms.plugins.state import cohort
from tests import factories
from tests.conftest import Browser, Personas
from tests.monitoring.conftest import WASM, alerts_of, api, bundled, monitor_settings, until_alert

#: Only the canary comparison may act here: the leak and regression verdicts are switched off.
CANARY_ONLY = monitor_settings(canary_compare_calls=8, canary_min_calls=12,
                               regression_ratio=1000.0, watch_regression_ratio=1000.0,
                               leak_trend_calls=100_000, watch_trend_calls=100_000)


@pytest.fixture
def app(tmp_path: Any) -> Iterator[Flask]:
    yield from bundled(tmp_path, monitoring=CANARY_ONLY)


def split_agents(app: Flask, personas: Personas) -> tuple[Browser, Browser, int]:
    """(an agent in the canary's cohort, one outside it, the percentage that splits them)."""
    with app.app_context():
        agency = db.session.get(Agency, personas.agency_a_id)
        names = ["alice.agent", "bob.agent"]
        while True:
            users = {u.username: u.id for u in db.session.scalars(select(User))}
            buckets = sorted((cohort("softphone", users[n]), n) for n in names)
            if buckets[0][0] != buckets[-1][0]:
                break
            names.append(f"extra{len(names)}.agent")  # two agents in one bucket: add one
            factories.make_user(db.session, agency, names[-1])
    (low, inside), (high, outside) = buckets[0], buckets[-1]
    browsers = []
    for name in (inside, outside):
        b = Browser(app.test_client())
        assert b.login(name).status_code == 302
        browsers.append(b)
    return browsers[0], browsers[1], high  # cohort < percent gets the canary


def start_canary(app: Flask, folder: str, version_text: str | None = None) -> tuple[str, str]:
    from plugin_sdk.manifest import load_manifest

    path = WASM / folder
    manifest = load_manifest(path)
    text = (path / "plugin.toml").read_text()
    if version_text is not None:
        text = text.replace(f'version = "{manifest.version}"', f'version = "{version_text}"', 1)
    with app.app_context():
        row = lifecycle.register_bundled(db.session, text, (path / (manifest.module_file or "")).read_bytes(), {})
        db.session.commit()
        return row.plugin_id, row.version


def test_a_canary_that_regresses_is_rolled_back_with_an_alert_and_an_audit_event(
        app: Flask, personas: Personas) -> None:
    inside, outside, percent = split_agents(app, personas)
    plugin_id, version = start_canary(app, "faulty/softphone-leaky")
    with app.app_context():
        lifecycle.set_canary(db.session, Actor(None, "ada.admin", None), plugin_id, version,
                             percent, lifecycle.Release("try the new history", override_gate="x"),
                             notify=state().flags.changed)
    tokens = [b.csrf("/clients") for b in (inside, outside)]
    seen: set[str] = set()

    def step() -> None:
        for b, token in zip((inside, outside), tokens):
            answer = api(b, "softphone", "toolbar", {}, token)
            assert answer.status_code == 200
            seen.add(answer.get_json()["stats"]["version"])

    alert = until_alert(app, step, "canary_regression", plugin_id)
    assert seen == {version, "1.0.0"}  # both versions ran
    assert (alert.severity, alert.version) == ("critical", version)
    assert alert.details["signal"] == "fuel_per_call" and alert.details["current"] == "1.0.0"
    assert alert.details["value"] >= 1.5 * alert.details["baseline"]
    assert alert.message.startswith(f"softphone canary {version} regressed against 1.0.0: toolbar "
                                    "uses ")
    assert alert.details.get("rolled_back") is True
    with app.app_context():
        install = lifecycle.get_install(db.session, plugin_id)
        assert (install.canary_version, install.canary_percent) == (None, 0)
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "plugin.canary.rollback"))
        assert event is not None and event.actor_name == "monitoring"
        assert event.after["signal"] == "fuel_per_call"
        assert event.after["value"] == alert.details["value"]
        assert event.after["reason"].startswith(f"canary regression alert #{alert.id}")
    # The canary's agents are on the current version again at once.
    answer = api(inside, "softphone", "toolbar", {}, tokens[0])
    assert answer.get_json()["stats"]["version"] == "1.0.0"
    metrics = app.extensions["monitoring"].metrics.exposition()[0].decode()
    assert (f'cms_plugin_canary_rollbacks_total{{plugin="softphone",signal="fuel_per_call",'
            f'version="{version}"}} 1.0') in metrics
    # Nothing was quarantined, only the canary was blamed, and its only critical alert is the
    # canary's (a warning that its fuel jumped may come with it).
    with app.app_context():
        assert lifecycle.get_version(db.session, plugin_id, version).quarantined_at is None
    assert {a.version for a in alerts_of(app)} == {version}
    assert [a.kind for a in alerts_of(app) if a.severity == "critical"] == ["canary_regression"]


def test_a_healthy_canary_is_promoted_only_after_its_minimum_calls(
        app: Flask, personas: Personas, as_user: Any) -> None:
    inside, outside, percent = split_agents(app, personas)
    plugin_id, version = start_canary(app, "softphone", "1.0.1")
    admin = as_user("ada.admin")
    token = admin.csrf(f"/admin/plugins/{plugin_id}")
    form = {"csrf_token": token, "version": version, "reason": "ship it", "percent": percent}
    assert admin.client.post(f"/admin/plugins/{plugin_id}/release",
                             data={**form, "do": "canary"}).status_code == 303

    def promote() -> Any:
        return admin.client.post(f"/admin/plugins/{plugin_id}/release",
                                 data={**form, "do": "promote"})

    early = promote()
    assert early.status_code == 409
    assert "has run 0 of the 12 calls it needs without a regression" in early.get_data(as_text=True)
    tokens = [b.csrf("/clients") for b in (inside, outside)]
    for _ in range(14):
        for b, t in zip((inside, outside), tokens):
            assert api(b, "softphone", "toolbar", {}, t).status_code == 200
    app.extensions["monitoring"].flush()
    page = admin.client.get(f"/admin/plugins/{plugin_id}").get_data(as_text=True)
    guard = page[page.index('id="canary-guard"'):]
    guard = guard[:guard.index("</dd>")]
    assert "ready to promote" in guard and "fault rate 0 % vs 0 %" in guard
    assert promote().status_code == 303
    with app.app_context():
        install = lifecycle.get_install(db.session, plugin_id)
        assert (install.version, install.previous_version) == (version, "1.0.0")
    assert alerts_of(app) == []
