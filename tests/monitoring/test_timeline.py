"""The "what changed" timeline of /admin/health: changes, alerts and worker starts of the last
hour, each plugin alert linked to the release that most plausibly caused it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Flask

from cms.audit import Actor
from cms.extensions import db
from cms.monitoring import alerts, timeline
from cms.monitoring.detectors import Finding
from cms.monitoring.timeline import Event
from cms.plugins import lifecycle
from tests.conftest import Personas
from tests.monitoring.conftest import release_faulty

T0 = datetime(2026, 4, 10, 14, 2, 1, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def release(seconds: float, plugin: str, version: str, key: str = "plugin.promote") -> Event:
    return Event(at(seconds), "change", timeline.CHANGES[key], f"{plugin} {version}", plugin,
                 version, "ada.admin", key=key)


def alert(seconds: float, plugin: str, version: str, kind: str = "memory_leak") -> Event:
    return Event(at(seconds), "alert", kind, "...", plugin, version, severity="critical",
                 key=f"alert:{seconds}")


def test_each_alert_is_linked_to_the_release_of_its_own_version() -> None:
    found = timeline.link([
        release(0, "softphone", "1.1.0"),
        release(1, "mail", "2.0.0"),
        alert(6, "softphone", "1.1.0"),
        release(6.5, "softphone", "1.1.0", "plugin.quarantine"),
        alert(7, "mail", "1.9.0", "fault_rate"),  # the old mail version: not the release's fault
        Event(at(8), "change", "flag changed", "flag plugins.all changed", key="flag.update"),
    ])
    assert found.headline == ("softphone 1.1.0 released 14:02:01 -> memory_leak critical 14:02:07 "
                              "-> quarantined 14:02:07")
    softphone_alert = next(e for e in found.events if e.kind == "alert" and e.plugin_id == "softphone")
    assert softphone_alert.cause is not None
    assert found.events[softphone_alert.cause].version == "1.1.0"
    assert next(e for e in found.events if e.plugin_id == "mail" and e.kind == "alert").cause is None
    assert len(found.chains) == 1


def test_the_newest_chain_leads_and_a_quarantine_before_the_alert_is_kept_in_order() -> None:
    found = timeline.link([
        release(0, "terminal", "1.1.0"), alert(3, "terminal", "1.1.0", "fault_rate"),
        release(60, "mail", "1.1.0", "plugin.canary"),
        release(61, "mail", "1.1.0", "plugin.quarantine"),  # by the circuit breaker, first
        alert(62, "mail", "1.1.0", "cpu_spike"),
    ])
    assert found.headline == ("mail 1.1.0 canary 14:03:01 -> quarantined 14:03:02 -> "
                              "cpu_spike critical 14:03:03")
    assert [c[0].plugin_id for c in found.chains] == ["mail", "terminal"]


def test_no_alert_after_a_change_is_no_headline() -> None:
    found = timeline.link([release(0, "softphone", "1.1.0")])
    assert found.headline is None and len(found.events) == 1


def test_the_health_page_opens_on_what_changed(app: Flask, personas: Personas,
                                               as_user: Any) -> None:
    plugin_id, version = release_faulty(app, "softphone-leaky")
    with app.app_context():
        finding = Finding("memory_leak", "critical", f"{plugin_id} {version}: leaking", plugin_id,
                          version)
        raised = alerts.record(db.session, finding, renotify_s=900)
        assert raised is not None
        lifecycle.quarantine(db.session, Actor.system("monitoring"), plugin_id, version,
                             f"memory leak alert #{raised.alert.id}")
        board = timeline.build(db.session, datetime.now(timezone.utc))
    assert board.headline is not None
    assert board.headline.startswith(f"{plugin_id} {version} released ")
    assert " -> memory_leak critical " in board.headline and " -> quarantined " in board.headline
    html = as_user("ada.admin").get("/admin/health").get_data(as_text=True)
    changed = html.index('id="what-changed"')
    assert changed < html.index("data-health-plugin")  # before the per-plugin sections
    assert f"<strong>{board.headline}</strong>" in html.replace("&gt;", ">")
    assert "after softphone 1.1.0-leaky released at" in html
    assert 'data-kind="worker"' in html  # this worker's start is on the timeline
