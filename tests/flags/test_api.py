"""/api/admin/flags with admin tokens: 401 without a valid token, 403 for agents, 422 for bad
input, 404 for unknown flags; PUT then GET; CSRF only for session requests."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cms.app_state import state
from cms.audit import Actor
from cms.auth.tokens import revoke_token
from cms.extensions import db
from cms.flags import ensure_plugin_flag
from cms.models import AdminToken, AuditEvent, Role, User
from tests.conftest import Browser, csrf_from

URL = "/api/admin/flags/plugin.softphone"
CHANGE = {"enabled": False, "rollout_percent": 100, "reason": "calls drop for everyone"}


@pytest.fixture
def api(app: Flask, admin_token: str) -> FlaskClient:
    with app.app_context():
        ensure_plugin_flag(db.session, "softphone", "Softphone")
        db.session.commit()
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_list_and_show_with_a_token(api: FlaskClient, admin_token: str) -> None:
    listed = api.get("/api/admin/flags", headers=bearer(admin_token))
    assert listed.status_code == 200
    body = listed.get_json()
    keys = [flag["key"] for flag in body["flags"]]
    assert keys == sorted(keys) and {"plugin.softphone", "plugins.all"} <= set(keys)
    assert body["version"] == 1
    shown = api.get(URL, headers=bearer(admin_token)).get_json()
    assert shown["enabled"] is True and shown["kind"] == "kill_switch"
    assert shown["targeting"] == {"agents": [], "agencies": [], "roles": []}


def test_put_then_get(app: Flask, api: FlaskClient, admin_token: str) -> None:
    response = api.put(URL, json={**CHANGE, "targeting": {"agencies": [1]}}, headers=bearer(admin_token))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["enabled"] is False and response.get_json()["updated_by"] == "ada.admin"
    assert "Set-Cookie" not in response.headers  # no session for bearer requests
    after = api.get(URL, headers=bearer(admin_token)).get_json()
    assert (after["enabled"], after["targeting"]["agencies"], after["version"]) == (False, [1], 2)
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "flag.update"))
        assert event is not None and event.actor_name == "ada.admin"
        assert event.after == {"enabled": False, "targeting": {"agents": [], "agencies": [1], "roles": []},
                               "reason": "calls drop for everyone"}
        assert db.session.scalar(select(AdminToken.last_used_at)) is not None
        # The acting worker applied the change at once.
        assert state().flags.version == 2


def test_a_partial_put_keeps_the_other_fields(api: FlaskClient, admin_token: str) -> None:
    assert api.put(URL, json={"rollout_percent": 30, "reason": "canary"}, headers=bearer(admin_token)).status_code == 200
    flag = api.get(URL, headers=bearer(admin_token)).get_json()
    assert (flag["enabled"], flag["rollout_percent"]) == (True, 30)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**CHANGE, "enabeld": True}, "Unknown field(s): enabeld"),
        ({**CHANGE, "enabled": "false"}, "enabled must be true or false"),
        ({**CHANGE, "enabled": None}, "enabled must be true or false"),
        ({**CHANGE, "rollout_percent": 150}, "from 0 to 100"),
        ({**CHANGE, "rollout_percent": -5}, "from 0 to 100"),
        ({**CHANGE, "rollout_percent": "50"}, "rollout_percent must be a whole number"),
        ({**CHANGE, "rollout_percent": 50.5}, "rollout_percent must be a whole number"),
        ({**CHANGE, "rollout_percent": True}, "rollout_percent must be a whole number"),
        ({"enabled": False, "rollout_percent": 100}, "reason is required"),
        ({**CHANGE, "reason": 42}, "reason is required"),
        ({**CHANGE, "reason": "  "}, "A reason of 3 to 500 characters is required"),
        ({**CHANGE, "targeting": ["alice"]}, "targeting must be an object"),
        ({**CHANGE, "targeting": {"teams": []}}, "Unknown targeting list(s): teams"),
        ({**CHANGE, "targeting": {"roles": ["root"]}}, "targeting.roles may hold agent and admin"),
        ({"reason": "nothing here"}, "Nothing to change"),
        ([CHANGE], "Send a JSON object"),
    ],
)
def test_bad_input_answers_422_with_a_message(
    api: FlaskClient, admin_token: str, body: Any, message: str
) -> None:
    response = api.put(URL, json=body, headers=bearer(admin_token))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and message in error["message"], error
    assert api.get(URL, headers=bearer(admin_token)).get_json()["version"] == 1


def test_a_body_that_is_not_json_answers_422(api: FlaskClient, admin_token: str) -> None:
    response = api.put(URL, data="enabled=false", headers=bearer(admin_token))
    assert response.status_code == 422 and "Send a JSON object" in response.get_json()["error"]["message"]


def test_unknown_flags_answer_404(api: FlaskClient, admin_token: str) -> None:
    assert api.get("/api/admin/flags/plugin.nope", headers=bearer(admin_token)).status_code == 404
    response = api.put("/api/admin/flags/plugin.nope", json=CHANGE, headers=bearer(admin_token))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer cms_wrong"}, {"Authorization": "Bearer "},
     {"Authorization": "Basic YWRhOnB3"}, {"Authorization": "cms_no_scheme"}],
)
def test_missing_or_wrong_credentials_answer_401_json(api: FlaskClient, headers: dict[str, str]) -> None:
    for response in (api.get("/api/admin/flags", headers=headers), api.put(URL, json=CHANGE, headers=headers)):
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_tokens_and_tokens_of_former_admins_stop_working(
    app: Flask, api: FlaskClient, admin_token: str
) -> None:
    assert api.get("/api/admin/flags", headers=bearer(admin_token)).status_code == 200
    with app.app_context():
        ada = db.session.scalar(select(User).where(User.username == "ada.admin"))
        assert ada is not None
        ada.role = Role.AGENT
        db.session.commit()
    assert api.get("/api/admin/flags", headers=bearer(admin_token)).status_code == 401
    with app.app_context():
        ada = db.session.scalar(select(User).where(User.username == "ada.admin"))
        assert ada is not None
        ada.role = Role.ADMIN
        db.session.commit()
        assert api.get("/api/admin/flags", headers=bearer(admin_token)).status_code == 200
        token_id = db.session.scalar(select(AdminToken.id))
        assert token_id is not None
        revoke_token(db.session, Actor.system("test"), token_id)
    assert api.put(URL, json=CHANGE, headers=bearer(admin_token)).status_code == 401


def test_agents_with_a_session_get_403(api: FlaskClient, as_user: Any) -> None:
    agent = as_user("alice.agent")
    assert agent.get("/api/admin/flags").status_code == 403
    response = agent.client.put(URL, json=CHANGE, headers={"X-CSRFToken": agent.csrf("/")})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_an_admin_session_needs_csrf_for_put(api: FlaskClient, as_user: Any) -> None:
    admin: Browser = as_user("ada.admin")
    assert admin.get("/api/admin/flags").status_code == 200
    refused = admin.client.put(URL, json=CHANGE)
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf_failed"
    token = csrf_from(admin.get("/").get_data(as_text=True))
    done = admin.client.put(URL, json=CHANGE, headers={"X-CSRFToken": token})
    assert done.status_code == 200 and done.get_json()["enabled"] is False


def test_a_bearer_token_wins_over_a_session_cookie(api: FlaskClient, as_user: Any) -> None:
    """A request with both is judged by its token alone (a bad one is 401 even when logged in)."""
    admin: Browser = as_user("ada.admin")
    assert admin.client.put(URL, json=CHANGE, headers=bearer("cms_forged")).status_code == 401
