"""Login, logout, session rotation and server-side revocation."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from cms.auth.sessions import revoke_user_sessions
from cms.extensions import db
from cms.models import AuditEvent, User
from tests.conftest import Browser, Personas, csrf_from


def _session_cookie(browser: Browser) -> str | None:
    cookie = browser.client.get_cookie("cms_session")
    return cookie.value if cookie else None


def test_login_form_contract(browser: Browser) -> None:
    page = browser.get("/login").get_data(as_text=True)
    assert 'type="hidden"' in page and 'name="csrf_token"' in page
    assert 'name="username"' in page and 'name="password"' in page


def test_login_success_redirects_to_root_and_shows_dashboard(
    browser: Browser, personas: Personas
) -> None:
    response = browser.login(personas.agent_a)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert browser.get("/").status_code == 200


def test_wrong_password_is_401_with_message_and_audited(
    app: Flask, browser: Browser, personas: Personas
) -> None:
    response = browser.login(personas.agent_a, "wrong-password-123")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions == ["auth.login.failure"]


def test_unknown_user_gets_the_same_message(browser: Browser, personas: Personas) -> None:
    response = browser.login("nobody.here", "whatever-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)


def test_login_is_case_insensitive_on_username(browser: Browser, personas: Personas) -> None:
    assert browser.login("Alice.Agent").status_code == 302


def test_login_without_csrf_token_is_rejected(browser: Browser, personas: Personas) -> None:
    response = browser.client.post(
        "/login", data={"username": personas.agent_a, "password": personas.password}
    )
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert browser.get("/").status_code == 302  # still anonymous


def test_login_with_token_of_another_session_is_rejected(
    app: Flask, browser: Browser, personas: Personas
) -> None:
    other = Browser(app.test_client())
    foreign_token = csrf_from(other.get("/login").get_data(as_text=True))
    browser.get("/login")
    response = browser.client.post(
        "/login",
        data={"username": personas.agent_a, "password": personas.password, "csrf_token": foreign_token},
    )
    assert response.status_code == 400


def test_session_is_renewed_at_login(browser: Browser, personas: Personas) -> None:
    anonymous_token = csrf_from(browser.get("/login").get_data(as_text=True))
    before = _session_cookie(browser)
    browser.login(personas.agent_a)
    after = _session_cookie(browser)
    assert before and after and before != after
    # The CSRF token of the anonymous session is no longer accepted.
    response = browser.client.post("/logout", data={"csrf_token": anonymous_token})
    assert response.status_code == 400


def test_planted_session_cookie_is_not_promoted(
    app: Flask, browser: Browser, personas: Personas
) -> None:
    browser.get("/login")
    planted = _session_cookie(browser)
    browser.login(personas.agent_a)
    attacker = app.test_client()
    attacker.set_cookie("cms_session", planted or "")
    assert attacker.get("/").status_code == 302


def test_logout_revokes_the_session_server_side(
    app: Flask, browser: Browser, personas: Personas
) -> None:
    browser.login(personas.agent_a)
    stolen = _session_cookie(browser)
    response = browser.logout()
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    replay = app.test_client()
    replay.set_cookie("cms_session", stolen or "")
    assert replay.get("/").status_code == 302
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["auth.login.success", "auth.logout"]


def test_logout_requires_post(browser: Browser, personas: Personas) -> None:
    browser.login(personas.agent_a)
    assert browser.get("/logout").status_code == 405
    assert browser.get("/").status_code == 200


def test_revoked_sessions_end_on_next_request(
    app: Flask, browser: Browser, personas: Personas
) -> None:
    browser.login(personas.agent_a)
    assert browser.get("/").status_code == 200
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == personas.agent_a))
        assert revoke_user_sessions(db.session, user.id, "force_logout") == 1
        db.session.commit()
    response = browser.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_deactivated_user_is_logged_out_and_cannot_log_in(
    app: Flask, browser: Browser, personas: Personas
) -> None:
    browser.login(personas.agent_a)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == personas.agent_a))
        user.is_active = False
        db.session.commit()
    assert browser.get("/").status_code == 302
    assert browser.login(personas.agent_a).status_code == 401


def test_next_parameter_only_follows_local_paths(browser: Browser, personas: Personas) -> None:
    token = csrf_from(browser.get("/login").get_data(as_text=True))
    response = browser.client.post(
        "/login?next=https://evil.example/steal",
        data={"username": personas.agent_a, "password": personas.password, "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_anonymous_json_client_gets_401_json(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_an_old_argon2_hash_is_upgraded_at_the_next_login(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher, extract_parameters

    from cms.auth.passwords import OWASP_MINIMUM
    from tests.conftest import build_app, create_personas, make_settings

    for app in build_app(make_settings(tmp_path, password_hash_fast=False)):
        personas = create_personas(app)
        old = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash(personas.password)
        with app.app_context():
            user = db.session.scalar(select(User).where(User.username == personas.agent_a))
            user.password_hash = old
            db.session.commit()
        browser = Browser(app.test_client())
        assert browser.login(personas.agent_a, "wrong-password-123").status_code == 401
        with app.app_context():  # a failed login changes nothing
            assert db.session.scalar(select(User.password_hash).where(
                User.username == personas.agent_a)) == old
        assert browser.login(personas.agent_a).status_code == 302
        with app.app_context():
            upgraded = db.session.scalar(select(User.password_hash).where(
                User.username == personas.agent_a))
        assert upgraded != old and extract_parameters(upgraded) == OWASP_MINIMUM
        browser.logout()
        assert browser.login(personas.agent_a).status_code == 302  # the new hash verifies
        with app.app_context():
            assert db.session.scalar(select(User.password_hash).where(
                User.username == personas.agent_a)) == upgraded  # and is not rehashed again


def test_password_hashing_holds_no_database_connection(app: Flask, personas: Personas) -> None:
    passwords = app.extensions["cms"].passwords
    # The request's own session, not the pool: the flag watcher's thread polls the database
    # now and then with a connection of its own.
    seen: list[tuple[str, bool]] = []

    class Watching(type(passwords)):  # type: ignore[misc]
        def verify(self, password_hash, password):  # type: ignore[no-untyped-def]
            seen.append(("verify", db.session().in_transaction()))
            return super().verify(password_hash, password)

        def hash(self, password):  # type: ignore[no-untyped-def]
            seen.append(("hash", db.session().in_transaction()))
            return super().hash(password)

        def needs_rehash(self, password_hash):  # type: ignore[no-untyped-def]
            return True  # force the upgrade path too

    watching = Watching(fast=True)
    app.extensions["cms"].passwords = watching
    try:
        browser = Browser(app.test_client())
        assert browser.login(personas.agent_a, "wrong-password-123").status_code == 401
        assert browser.login(personas.agent_a).status_code == 302
    finally:
        app.extensions["cms"].passwords = passwords
    assert [name for name, _ in seen] == ["verify", "verify", "hash"]
    assert not any(held for _, held in seen), seen
