"""`flask user ...` through Flask's CLI runner."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from cms.extensions import db
from cms.models import Agency, AuditEvent, Role, User
from tests.conftest import Personas
from tests.factories import PASSWORD


def _user(app: Flask, username: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


@pytest.mark.parametrize("args", [["user"], ["user", "create"], ["user", "deactivate"], ["user", "list"]])
def test_help(runner: Any, args: list[str]) -> None:
    result = runner.invoke(args=[*args, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_create_with_password_from_stdin_in_the_default_agency(app: Flask, runner: Any) -> None:
    result = runner.invoke(
        args=["user", "create", "Jane.Doe", "--role", "admin", "--display-name", "Jane Doe",
              "--email", "jane@example.com", "--password-stdin"],
        input="a-long-password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin jane.doe in Head Office." in result.stdout
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "jane.doe"))
        assert user is not None and user.role is Role.ADMIN and user.display_name == "Jane Doe"
        assert user.agency.name == "Head Office"
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.create"))
        assert event.actor_name == "cli" and event.actor_id is None
    assert runner.invoke(args=["user", "list"]).stdout.count("jane.doe") == 1


def test_created_user_can_log_in_with_the_piped_password(app: Flask, runner: Any, browser: Any) -> None:
    runner.invoke(args=["user", "create", "sam", "--role", "agent", "--agency", "Gamma", "--password-stdin"],
                  input="sams-secret-password\r\n")
    assert browser.login("sam", "sams-secret-password").status_code == 302


def test_existing_agency_is_reused_case_insensitively(app: Flask, runner: Any, personas: Personas) -> None:
    result = runner.invoke(
        args=["user", "create", "carl", "--role", "agent", "--agency", "alpha TRAVEL", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    user = _user(app, "carl")
    assert user is not None and user.agency_id == personas.agency_a_id
    with app.app_context():
        assert db.session.scalar(select(Agency).where(Agency.name == "alpha TRAVEL")) is None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["alice.agent", "--role", "agent"], PASSWORD + "\n", "taken"),
        (["newbie", "--role", "agent"], "short\n", "at least 10 characters"),
        (["newbie", "--role", "agent"], "", "no password"),
        (["newbie", "--role", "agent"], "\n", "no password"),
        (["x", "--role", "agent"], PASSWORD + "\n", "USERNAME"),
        (["newbie", "--role", "agent", "--email", "nope"], PASSWORD + "\n", "--email"),
    ],
)
def test_create_errors_exit_2_with_one_line(
    app: Flask, runner: Any, personas: Personas, args: list[str], stdin: str, message: str
) -> None:
    result = runner.invoke(args=["user", "create", *args, "--password-stdin"], input=stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert _user(app, "newbie") is None


def test_create_without_password_stdin_is_refused(app: Flask, runner: Any) -> None:
    result = runner.invoke(args=["user", "create", "newbie", "--role", "agent"])
    assert result.exit_code == 2 and "--password-stdin" in result.stderr
    assert _user(app, "newbie") is None


def test_deactivate(app: Flask, runner: Any, personas: Personas) -> None:
    result = runner.invoke(args=["user", "deactivate", "Alice.Agent"])
    assert result.exit_code == 0, result.output
    assert "Deactivated alice.agent" in result.stdout
    user = _user(app, "alice.agent")
    assert user is not None and not user.is_active


def test_deactivate_unknown_or_inactive_user_exits_2(runner: Any, personas: Personas) -> None:
    result = runner.invoke(args=["user", "deactivate", "nobody"])
    assert result.exit_code == 2
    assert result.stderr == "Error: There is no user named 'nobody'.\n"
    runner.invoke(args=["user", "deactivate", "bob.agent"])
    again = runner.invoke(args=["user", "deactivate", "bob.agent"])
    assert again.exit_code == 2 and "already deactivated" in again.stderr


def test_list(runner: Any, personas: Personas) -> None:
    lines = runner.invoke(args=["user", "list"]).stdout.splitlines()
    assert lines[0].split()[:4] == ["USERNAME", "ROLE", "STATUS", "AGENCY"]
    assert [line.split()[0] for line in lines[1:]] == ["ada.admin", "alice.agent", "bob.agent"]
