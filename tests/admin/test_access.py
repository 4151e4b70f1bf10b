"""Only admins reach /admin: agents get 403, anonymous visitors go to the login page."""

from __future__ import annotations

import re

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.models import Agency, User
from tests.conftest import Browser, Personas, csrf_from

# user 2 is alice.agent and agency 2 is Beta Tours (personas are created in this order).
GET_URLS = [
    "/admin/",
    "/admin/users",
    "/admin/users/new",
    "/admin/users/2",
    "/admin/agencies",
    "/admin/agencies/2",
    "/admin/audit",
    "/admin/audit.csv",
]
POST_URLS = [
    "/admin/users/new",
    "/admin/users/2/deactivate",
    "/admin/users/2/reactivate",
    "/admin/users/2/password",
    "/admin/users/2/logout",
    "/admin/agencies",
    "/admin/agencies/2/rename",
    "/admin/agencies/2/deactivate",
    "/admin/agencies/2/activate",
]
POST_DATA = {
    "username": "mallory", "display_name": "M", "role": "admin", "agency_id": "1",
    "password": "a-long-password", "confirm": "a-long-password", "name": "Hijacked",
}


def _sample_url(rule: Any) -> str:
    return re.sub(r"<(?:\w+:)?(?:user_id|agency_id|token_id)>", "2", rule.rule)


@pytest.mark.parametrize("url", GET_URLS)
def test_agent_gets_403_on_every_admin_page(as_user: Any, url: str) -> None:
    response = as_user("alice.agent").get(url)
    assert response.status_code == 403
    assert "administrators" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", POST_URLS)
def test_agent_gets_403_on_every_admin_action_and_nothing_changes(
    app: Flask, as_user: Any, url: str
) -> None:
    response = as_user("bob.agent").post(url, POST_DATA)
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "mallory")) is None
        assert db.session.scalar(select(Agency).where(Agency.name == "Hijacked")) is None
        assert all(u.is_active for u in db.session.scalars(select(User)))
        assert all(a.is_active for a in db.session.scalars(select(Agency)))


def test_agent_asking_for_json_gets_a_json_403(as_user: Any) -> None:
    response = as_user("alice.agent").get("/admin/users", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("url", GET_URLS)
def test_anonymous_get_redirects_to_login(browser: Browser, personas: Personas, url: str) -> None:
    response = browser.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", POST_URLS)
def test_anonymous_post_redirects_to_login(browser: Browser, personas: Personas, url: str) -> None:
    token = csrf_from(browser.get("/login").get_data(as_text=True))
    response = browser.client.post(url, data={**POST_DATA, "csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_every_admin_route_refuses_agents(app: Flask, as_user: Any) -> None:
    """Routes appended later (flags, plugins, health) are checked here without editing this file."""
    agent = as_user("alice.agent")
    refused = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or "<" in _sample_url(rule):
            continue
        if "GET" in rule.methods:
            refused.append((rule.rule, agent.get(_sample_url(rule)).status_code))
        if "POST" in rule.methods:
            refused.append((rule.rule, agent.post(_sample_url(rule), {}).status_code))
    assert refused and all(status == 403 for _, status in refused), refused
