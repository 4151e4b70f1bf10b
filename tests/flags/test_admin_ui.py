"""The admin flag pages: list, change with a required reason, kill-switch confirmation, CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.flags import ensure_plugin_flag, get_flag
from cms.models import AuditEvent
from tests.conftest import Browser, Personas

FORM = {"state": "on", "rollout_percent": "100", "agents": "", "agencies": "", "roles": "",
        "reason": "because we must"}


@pytest.fixture
def admin(app: Flask, personas: Personas, as_user: Any) -> Browser:
    with app.app_context():
        ensure_plugin_flag(db.session, "softphone", "Softphone")
        db.session.commit()
    return as_user("ada.admin")


def _flag(app: Flask, key: str) -> Any:
    with app.app_context():
        return get_flag(db.session, key)


def _events(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.target_type == "flag")))


def _post(browser: Browser, key: str, **changes: str) -> Any:
    return browser.post(f"/admin/flags/{key}", {**FORM, **changes}, csrf_page=f"/admin/flags/{key}")


def test_the_list_shows_every_flag_with_its_state(admin: Browser) -> None:
    page = admin.get("/admin/flags").get_data(as_text=True)
    assert '<a href="/admin/flags" aria-current="page">Feature flags</a>' in page
    assert "coming soon" not in page.split("Feature flags")[1].split("</nav>")[0]
    for key in ("plugin.softphone", "plugins.all", "plugins.auto_quarantine"):
        assert f'data-flag="{key}"' in page
    assert "Kill switch" in page and "everyone" in page


def test_changing_a_flag_with_a_reason(app: Flask, admin: Browser) -> None:
    response = _post(admin, "plugins.auto_quarantine", state="off", rollout_percent="25",
                     agents="alice.agent, 7", roles="agent", reason="Too many false alarms")
    assert response.status_code == 303
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "plugins.auto_quarantine is now off at 25%" in page
    assert "Too many false alarms" in page  # the history on the page
    flag = _flag(app, "plugins.auto_quarantine")
    assert (flag.enabled, flag.rollout_percent, flag.updated_by) == (False, 25, "ada.admin")
    assert flag.targeting == {"agents": ["alice.agent", "7"], "agencies": [], "roles": ["agent"]}
    [event] = _events(app)
    assert event.after["reason"] == "Too many false alarms" and event.before["enabled"] is True
    assert "agents: alice.agent, 7 · roles: agent" in admin.get("/admin/flags").get_data(as_text=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": ""}, "Say why: it goes into the audit log."),
        ({"reason": "ab"}, "Field must be between 3 and 500 characters long."),
        ({"rollout_percent": "150"}, "Use a whole number from 0 to 100."),
        ({"rollout_percent": "lots"}, "Not a valid integer value."),
        ({"state": "maybe"}, "Not a valid choice."),
        ({"roles": "boss"}, "targeting.roles may hold agent and admin, not &#39;boss&#39;."),
        ({"agencies": "HQ"}, "targeting.agencies holds agency ids"),
    ],
)
def test_bad_input_re_renders_with_a_message_and_changes_nothing(
    app: Flask, admin: Browser, changes: dict[str, str], message: str
) -> None:
    response = _post(admin, "plugins.auto_quarantine", **{"state": "off", **changes})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert _flag(app, "plugins.auto_quarantine").enabled is True and _events(app) == []


def test_turning_a_kill_switch_off_needs_the_confirmation(app: Flask, admin: Browser) -> None:
    page = admin.get("/admin/flags/plugin.softphone").get_data(as_text=True)
    assert 'data-confirm="Change the kill switch plugin.softphone?' in page
    assert "I understand this turns plugin.softphone off for every agent" in page
    refused = _post(admin, "plugin.softphone", state="off", reason="calls drop")
    assert refused.status_code == 422
    assert "Tick this box to confirm" in refused.get_data(as_text=True)
    assert _flag(app, "plugin.softphone").enabled is True and _events(app) == []
    done = _post(admin, "plugin.softphone", state="off", reason="calls drop", confirm_off="y")
    assert done.status_code == 303 and _flag(app, "plugin.softphone").enabled is False
    # Turning it back on needs no confirmation.
    assert _post(admin, "plugin.softphone", state="on", reason="fixed").status_code == 303
    assert _flag(app, "plugin.softphone").enabled is True


def test_unchanged_settings_say_so_and_write_nothing(app: Flask, admin: Browser) -> None:
    response = _post(admin, "plugin.softphone")
    assert "Nothing changed" in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert _events(app) == []


def test_a_post_without_csrf_token_is_refused(app: Flask, admin: Browser) -> None:
    response = admin.client.post("/admin/flags/plugin.softphone",
                                 data={**FORM, "state": "off", "confirm_off": "y"})
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    assert _flag(app, "plugin.softphone").enabled is True


def test_unknown_flags_are_404(admin: Browser) -> None:
    assert admin.get("/admin/flags/plugin.nope").status_code == 404
    assert _post(admin, "plugins.all").status_code == 303
    assert admin.post("/admin/flags/made.up", FORM).status_code == 404


@pytest.mark.parametrize("url", ["/admin/flags", "/admin/flags/plugin.softphone"])
def test_agents_get_403(app: Flask, admin: Browser, as_user: Any, url: str) -> None:
    agent = as_user("alice.agent")
    assert agent.get(url).status_code == 403
    assert agent.post(url, {**FORM, "state": "off", "confirm_off": "y"}).status_code in (403, 405)
    assert _flag(app, "plugin.softphone").enabled is True
