"""Security headers, cookie flags and error answers on every kind of response."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from cms.security import CONTENT_SECURITY_POLICY
from tests.conftest import Browser, Personas, build_app, make_settings


@pytest.mark.parametrize("path", ["/login", "/healthz", "/static/css/app.css", "/no-such-page", "/"])
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert len(response.headers["X-Request-ID"]) >= 8


def test_pages_are_not_cached_but_static_files_may_be(client: FlaskClient) -> None:
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/css/app.css").headers.get("Cache-Control", "")


def test_incoming_request_id_is_kept_when_well_formed(client: FlaskClient) -> None:
    assert client.get("/login", headers={"X-Request-ID": "abc12345-xyz"}).headers["X-Request-ID"] == "abc12345-xyz"
    bad = client.get("/login", headers={"X-Request-ID": "<script>"}).headers["X-Request-ID"]
    assert bad != "<script>" and len(bad) == 32


def test_session_cookie_flags_over_http(browser: Browser, personas: Personas) -> None:
    browser.login(personas.agent_a)
    cookie = browser.client.get_cookie("cms_session")
    assert cookie is not None
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure


def test_session_cookie_is_secure_over_https(browser: Browser, personas: Personas) -> None:
    page = browser.client.get("/login", base_url="https://localhost")
    assert "Secure" in page.headers["Set-Cookie"]
    assert "HttpOnly" in page.headers["Set-Cookie"] and "SameSite=Lax" in page.headers["Set-Cookie"]
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")


def test_secure_cookies_forced_by_configuration(tmp_path: Path) -> None:
    app = next(build_app(make_settings(tmp_path, session_cookie_secure=True)))
    response = app.test_client().get("/login")
    assert "Secure" in response.headers["Set-Cookie"]


def test_unknown_page_is_404_html_or_json_by_accept(client: FlaskClient) -> None:
    html = client.get("/no-such-page")
    assert html.status_code == 404 and html.mimetype == "text/html"
    assert "Not Found" in html.get_data(as_text=True)
    as_json = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert as_json.status_code == 404 and as_json.get_json()["error"]["code"] == "not_found"


def test_oversized_body_is_413_not_500(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413


def test_login_page_has_no_inline_script_or_style(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "<script>" not in page and " style=" not in page and "onclick" not in page
