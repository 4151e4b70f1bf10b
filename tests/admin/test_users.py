"""Admin user pages: list, create, detail, deactivate, force logout, reset password."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cms.extensions import db
from cms.models import AuditEvent, User
from tests.conftest import Browser, Personas
from tests.factories import PASSWORD, make_user


def _user(app: Flask, username: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


def _user_id(app: Flask, username: str) -> int:
    user = _user(app, username)
    assert user is not None
    return user.id


def _counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(User)) or 0,
            db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def _actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(AuditEvent.action).where(~AuditEvent.action.startswith("auth.")).order_by(AuditEvent.id)
        ))


@pytest.fixture
def admin(as_user: Any) -> Browser:
    return as_user("ada.admin")


def test_index_redirects_to_users(admin: Browser) -> None:
    response = admin.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"


def test_users_list_with_sidebar(admin: Browser) -> None:
    page = admin.get("/admin/users").get_data(as_text=True)
    for username in ("ada.admin", "alice.agent", "bob.agent"):
        assert username in page
    assert '<a href="/admin/users" aria-current="page">Users</a>' in page
    assert 'href="/admin/agencies"' in page and 'href="/admin/audit"' in page
    for label, url in (("Plugins", "/admin/plugins"), ("Feature flags", "/admin/flags")):
        assert re.search(rf'<a href="{url}"\s*>{label}</a>', page)
        assert f"{label} <small>· coming soon" not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=ALI", ["alice.agent"]),
        ("q=bob+a", ["bob.agent"]),
        ("role=admin", ["ada.admin"]),
        ("agency=2", ["bob.agent"]),
        ("active=inactive", []),
        ("role=agent&agency=1&active=active", ["alice.agent"]),
    ],
)
def test_users_list_filters(admin: Browser, query: str, expected: list[str]) -> None:
    page = admin.get(f"/admin/users?{query}").get_data(as_text=True)
    shown = re.findall(r'href="/admin/users/\d+">([^<]+)</a>', page)
    assert shown == expected


def test_users_list_pages_keep_filters(app: Flask, admin: Browser, personas: Personas) -> None:
    with app.app_context():
        from cms.models import Agency

        beta = db.session.get(Agency, personas.agency_b_id)
        for n in range(55):
            make_user(db.session, beta, f"beta.{n:02d}")
    page = admin.get("/admin/users?agency=2&role=agent").get_data(as_text=True)
    assert "Page 1 of 2" in page
    next_link = re.search(r'href="/admin/users\?page=2&amp;([^"]+)"', page)
    assert next_link and sorted(next_link.group(1).split("&amp;")) == ["agency=2", "role=agent"]
    second = admin.get("/admin/users?agency=2&role=agent&page=2").get_data(as_text=True)
    assert "bob.agent" in second and "beta.00" not in second


def test_create_user(app: Flask, admin: Browser, personas: Personas) -> None:
    form = admin.get("/admin/users/new").get_data(as_text=True)
    assert 'name="csrf_token"' in form and "Alpha Travel" in form and "Beta Tours" in form
    response = admin.post("/admin/users/new", {
        "username": "Carol.New", "display_name": "Carol New", "email": "carol@example.com",
        "role": "agent", "agency_id": str(personas.agency_b_id),
        "password": "carols-password", "confirm": "carols-password",
    })
    carol = _user(app, "carol.new")
    assert carol is not None and carol.agency_id == personas.agency_b_id
    assert response.status_code == 303 and response.headers["Location"] == f"/admin/users/{carol.id}"
    assert "User carol.new created." in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert Browser(app.test_client()).login("carol.new", "carols-password").status_code == 302


GOOD = {
    "username": "newbie", "display_name": "New Bie", "email": "", "role": "agent", "agency_id": "1",
    "password": "a-long-password", "confirm": "a-long-password",
}


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"username": "alice.agent"}, 409, "This username is taken."),
        ({"username": "ALICE.AGENT"}, 409, "This username is taken."),
        ({"password": "short", "confirm": "short"}, 422, "at least 10 characters"),
        ({"confirm": "something-else"}, 422, "The passwords do not match."),
        ({"username": "bad name!"}, 422, "lower-case letters"),
        ({"username": "n" * 65}, 422, "between 3 and 64"),
        ({"display_name": "d" * 121}, 422, "120"),
        ({"display_name": ""}, 422, "This field is required."),
        ({"email": "e" * 250 + "@x.com"}, 422, "254"),
        ({"email": "not-an-email"}, 422, "valid email"),
        ({"role": "root"}, 422, "Not a valid choice"),
        ({"agency_id": "999"}, 422, "Not a valid choice"),
        ({"password": "p" * 300, "confirm": "p" * 300}, 422, "256"),
    ],
)
def test_create_user_rejects_bad_input_and_writes_nothing(
    app: Flask, admin: Browser, changes: dict[str, str], status: int, message: str
) -> None:
    before = _counts(app)
    response = admin.post("/admin/users/new", {**GOOD, **changes})
    page = response.get_data(as_text=True)
    assert response.status_code == status
    assert message in page
    assert 'name="username"' in page  # the form is shown again
    assert changes.get("password", GOOD["password"]) not in page  # passwords are never echoed
    assert _counts(app) == before


def test_user_detail_shows_sessions_and_last_login(app: Flask, admin: Browser, as_user: Any) -> None:
    as_user("alice.agent")
    as_user("alice.agent")
    page = admin.get(f"/admin/users/{_user_id(app, 'alice.agent')}").get_data(as_text=True)
    assert re.search(r"<dt>Live sessions</dt><dd>2</dd>", page)
    assert re.search(r"<dt>Last login</dt><dd>\d\d \w{3} \d{4}", page)
    assert 'data-confirm="Log alice.agent out of every browser now?"' in page
    assert admin.get("/admin/users/999").status_code == 404


def test_deactivate_logs_the_user_out_and_blocks_login(app: Flask, admin: Browser, as_user: Any) -> None:
    alice = as_user("alice.agent")
    assert alice.get("/").status_code == 200
    user_id = _user_id(app, "alice.agent")
    response = admin.post(f"/admin/users/{user_id}/deactivate")
    assert response.status_code == 303
    assert "1 session ended" in admin.get(response.headers["Location"]).get_data(as_text=True)

    next_request = alice.get("/")
    assert next_request.status_code == 302 and next_request.headers["Location"].startswith("/login")
    assert Browser(app.test_client()).login("alice.agent").status_code == 401

    admin.post(f"/admin/users/{user_id}/reactivate")
    assert Browser(app.test_client()).login("alice.agent").status_code == 302
    assert _actions(app) == ["user.deactivate", "user.reactivate"]


def test_admin_cannot_deactivate_themselves(app: Flask, admin: Browser) -> None:
    own_id = _user_id(app, "ada.admin")
    page = admin.get(f"/admin/users/{own_id}").get_data(as_text=True)
    assert "You cannot deactivate your own account." in page
    assert f"/admin/users/{own_id}/deactivate" not in page
    response = admin.post(f"/admin/users/{own_id}/deactivate")
    assert response.status_code == 409
    assert "You cannot deactivate your own account." in response.get_data(as_text=True)
    assert _user(app, "ada.admin").is_active  # type: ignore[union-attr]
    assert admin.get("/admin/users").status_code == 200  # still logged in


def test_force_logout(app: Flask, admin: Browser, as_user: Any) -> None:
    alice = as_user("alice.agent")
    response = admin.post(f"/admin/users/{_user_id(app, 'alice.agent')}/logout")
    assert response.status_code == 303
    assert "Logged out: 1 session ended." in admin.get(response.headers["Location"]).get_data(as_text=True)
    next_request = alice.get("/")
    assert next_request.status_code == 302 and next_request.headers["Location"].startswith("/login")
    assert alice.login("alice.agent").status_code == 302  # may log in again
    assert _actions(app) == ["user.force_logout"]


def test_reset_password_typed(app: Flask, admin: Browser, as_user: Any) -> None:
    alice = as_user("alice.agent")
    response = admin.post(
        f"/admin/users/{_user_id(app, 'alice.agent')}/password",
        {"password": "alices-new-password", "confirm": "alices-new-password"},
    )
    assert response.status_code == 303
    assert alice.get("/").status_code == 302  # her session ended
    assert Browser(app.test_client()).login("alice.agent", PASSWORD).status_code == 401
    assert Browser(app.test_client()).login("alice.agent", "alices-new-password").status_code == 302


def test_reset_password_generated_is_shown_once(app: Flask, admin: Browser) -> None:
    detail = f"/admin/users/{_user_id(app, 'alice.agent')}"
    response = admin.post(f"{detail}/password", {"password": "", "confirm": ""})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    cookie = admin.client.get_cookie("cms_session")
    match = re.search(r"New password: <code>([A-Za-z0-9]{16})</code> — shown only this once", page)
    assert match
    assert match.group(1) not in admin.get(detail).get_data(as_text=True)
    assert cookie is not None and match.group(1) not in _decoded_session(app, cookie.value)
    assert Browser(app.test_client()).login("alice.agent", match.group(1)).status_code == 302
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.password_reset"))
        assert event.after["generated"] is True and match.group(1) not in str(event.after)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password": "alices-new-password", "confirm": "different-password"}, "do not match"),
        ({"password": "", "confirm": "typed-only-here"}, "do not match"),
        ({"password": "short", "confirm": "short"}, "at least 10 characters"),
    ],
)
def test_reset_password_rejects_bad_input(
    app: Flask, admin: Browser, as_user: Any, data: dict[str, str], message: str
) -> None:
    alice = as_user("alice.agent")
    response = admin.post(f"/admin/users/{_user_id(app, 'alice.agent')}/password", data)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert alice.get("/").status_code == 200  # nothing happened to her
    assert Browser(app.test_client()).login("alice.agent", PASSWORD).status_code == 302
    assert _actions(app) == []


def test_every_user_action_is_audited_with_actor_and_ip(app: Flask, admin: Browser) -> None:
    admin.post("/admin/users/new", {**GOOD})
    user_id = _user_id(app, "newbie")
    for action in ("logout", "password", "deactivate", "reactivate"):
        admin.post(f"/admin/users/{user_id}/{action}", {"password": "", "confirm": ""})
    assert _actions(app) == [
        "user.create", "user.force_logout", "user.password_reset", "user.deactivate", "user.reactivate",
    ]
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.startswith("user."))).all()
        who = {(e.actor_name, e.target_id, e.ip) for e in events}
        assert who == {("ada.admin", str(user_id), "127.0.0.1")}
        assert all(e.request_id for e in events)
        assert all("password_hash" not in str(e.before) + str(e.after) for e in events)


def _decoded_session(app: Flask, value: str) -> str:
    """The readable contents of a signed session cookie."""
    return str(app.session_interface.get_signing_serializer(app).loads(value))  # type: ignore[attr-defined]
