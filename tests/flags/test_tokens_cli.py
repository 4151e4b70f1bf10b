"""`flask token create|revoke|list`: the token is printed once, only admins get one, errors are
one line with exit status 2."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.models import AdminToken, AuditEvent
from tests.conftest import Personas


@pytest.fixture
def cli(app: Flask, personas: Personas) -> Any:
    runner = app.test_cli_runner()

    def run(*args: str) -> Any:
        return runner.invoke(args=["token", *args])

    return run


def test_create_prints_the_token_once_and_it_works(app: Flask, cli: Any) -> None:
    result = cli("create", "ada.admin", "--name", "deploy bot")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("cms_") and "\n" not in token
    assert "shown only this once" in result.stderr and "deploy bot" in result.stderr
    with app.app_context():
        row = db.session.scalar(select(AdminToken))
        assert row is not None and row.token_hash != token and token not in row.token_hash
        assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.target_type == "token")) == "token.create"
    response = app.test_client().get("/api/admin/flags", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "alice.agent"), "alice.agent is not an active admin: only admins get API tokens."),
        (("create", "nobody"), "There is no user 'nobody'."),
        (("create", "ada.admin", "--name", "x" * 81), "The name may have at most 80 characters."),
        (("revoke", "99"), "There is no token #99."),
        (("create", "ada.admin", "--expires-in", "30"),
         "--expires-in must be a whole number and a unit (s, m, h, d or w), such as 30d, not '30'."),
        (("create", "ada.admin", "--expires-in", "-1d"),
         "--expires-in must be a whole number and a unit (s, m, h, d or w), such as 30d, not '-1d'."),
        (("create", "ada.admin", "--expires-in", "4000d"), "--expires-in may be at most 3650d (ten years)."),
    ],
)
def test_errors_are_one_line_and_exit_2(app: Flask, cli: Any, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message}\n" and result.stdout == ""
    with app.app_context():
        assert db.session.scalar(select(AdminToken)) is None


def test_revoke_then_the_token_is_refused(app: Flask, cli: Any) -> None:
    token = cli("create", "ada.admin").stdout.strip()
    with app.app_context():
        token_id = db.session.scalar(select(AdminToken.id))
    result = cli("revoke", str(token_id))
    assert result.exit_code == 0 and result.stdout == f"Token #{token_id} revoked.\n"
    assert cli("revoke", str(token_id)).stdout == f"Token #{token_id} was already revoked.\n"
    response = app.test_client().get("/api/admin/flags", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_list_never_shows_tokens(cli: Any) -> None:
    assert cli("list").stdout == "No tokens.\n"
    token = cli("create", "ada.admin", "--name", "ci").stdout.strip()
    cli("create", "ada.admin")
    cli("revoke", "1")
    lines = cli("list").stdout.splitlines()
    assert lines[0].split() == ["ID", "USER", "NAME", "CREATED", "(UTC)", "LAST", "USED", "EXPIRES",
                                "STATUS"]
    assert lines[1].startswith("2 ") and lines[1].endswith("active")
    assert lines[2].startswith("1 ") and " ci " in lines[2] and lines[2].endswith("revoked")
    assert token not in "\n".join(lines)


@pytest.mark.parametrize("command", [(), ("create",), ("revoke",), ("list",)])
def test_help(cli: Any, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_a_token_with_an_expiry_works_until_then_and_is_refused_after(
        app: Flask, cli: Any, as_user: Any) -> None:
    from datetime import timedelta

    from cms.models import utcnow

    result = cli("create", "ada.admin", "--name", "ci", "--expires-in", "30d")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    with app.app_context():
        row = db.session.scalar(select(AdminToken))
        assert row is not None and row.expires_at is not None
        assert timedelta(days=29, hours=23) < row.expires_at - utcnow() <= timedelta(days=30)
    assert f"until {row.expires_at:%Y-%m-%d %H:%M} UTC" in result.stderr
    auth = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/admin/flags", headers=auth).status_code == 200
    listed = cli("list").stdout
    assert "EXPIRES" in listed and f"{row.expires_at:%Y-%m-%d %H:%M}" in listed and "active" in listed
    # Past its expiry: 401, on the API and on /metrics, and "expired" wherever it is listed.
    with app.app_context():
        db.session.get(AdminToken, row.id).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    refused = app.test_client().get("/api/admin/flags", headers=auth)
    assert refused.status_code == 401
    assert "expired" in refused.get_json()["error"]["message"]
    assert app.test_client().get("/metrics", headers=auth).status_code == 401
    assert "expired" in cli("list").stdout
    page = as_user("ada.admin").get("/admin/tokens").get_data(as_text=True)
    assert f'id="token-{row.id}" data-status="expired"' in page and "ci" in page
