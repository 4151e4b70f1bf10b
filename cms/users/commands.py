"""`flask user ...`: create, deactivate and list users from the command line.

Errors print one line on stderr and exit with status 2; changes are audited as actor "cli".
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click
from flask.cli import AppGroup

from cms.app_state import state
from cms.audit import Actor
from cms.errors import DomainError, ValidationFailed
from cms.extensions import db
from cms.users.service import (
    UserFilters,
    create_user_in_agency,
    deactivate_user,
    get_user_by_username,
    list_users,
)

DEFAULT_AGENCY = "Head Office"
CLI_ACTOR = Actor.system("cli")
# Service field names as the user typed them on the command line.
OPTION_NAMES = {
    "username": "USERNAME",
    "display_name": "--display-name",
    "email": "--email",
    "role": "--role",
    "agency_id": "--agency",
    "name": "--agency",
}

user_group = AppGroup("user", help="Manage users.")


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(2)


def _describe(error: DomainError) -> str:
    """One line: the field messages of a validation error, else the error's message."""
    if isinstance(error, ValidationFailed) and error.fields:
        return "; ".join(
            f"{OPTION_NAMES.get(name, name)}: {' '.join(msgs)}" for name, msgs in error.fields.items()
        )
    return error.message


def _read_password() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        _fail("no password on standard input (pipe one line into --password-stdin).")
    return password


@user_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["agent", "admin"]), required=True, help="What the user may do.")
@click.option("--agency", default=DEFAULT_AGENCY, show_default=True,
              help="Agency name; created when it does not exist.")
@click.option("--display-name", help="Full name (default: the username).")
@click.option("--email", help="Email address (optional).")
@click.option("--password-stdin", is_flag=True, help="Read the password as one line from stdin.")
def create_command(
    username: str, role: str, agency: str, display_name: str | None, email: str | None,
    password_stdin: bool,
) -> None:
    """Create USERNAME in an agency."""
    if not password_stdin:
        _fail("pass the password on standard input with --password-stdin.")
    password = _read_password()
    try:
        user = create_user_in_agency(
            db.session, state().passwords, CLI_ACTOR,
            agency_name=agency, username=username,
            display_name=display_name or username.strip(), email=email, role=role,
            password=password,
        )
    except DomainError as error:
        _fail(_describe(error))
    click.echo(f"Created {user.role.value} {user.username} in {user.agency.name}.")


@user_group.command("deactivate")
@click.argument("username")
def deactivate_command(username: str) -> None:
    """Deactivate USERNAME and end all their sessions."""
    try:
        user = get_user_by_username(db.session, username)
        revoked = deactivate_user(db.session, CLI_ACTOR, user.id)
    except DomainError as error:
        _fail(_describe(error))
    click.echo(f"Deactivated {user.username}; {revoked} session(s) ended.")


@user_group.command("list")
@click.option("--agency-id", type=int, help="Only this agency's users.")
@click.option("--limit", type=click.IntRange(1, 200), default=200, show_default=True)
def list_command(agency_id: int | None, limit: int) -> None:
    """List users (username, role, status, agency, last login)."""
    page = list_users(db.session, UserFilters(agency_id=agency_id), per_page=limit)
    rows = [("USERNAME", "ROLE", "STATUS", "AGENCY", "LAST LOGIN (UTC)")]
    for user in page.items:
        rows.append((
            user.username,
            user.role.value,
            "active" if user.is_active else "inactive",
            user.agency.name,
            user.last_login_at.strftime("%Y-%m-%d %H:%M") if user.last_login_at else "never",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    if page.total > len(page.items):
        click.echo(f"({len(page.items)} of {page.total} users shown)")
