"""`flask token ...`: create, revoke and list admin API tokens.

`create` prints the token alone on stdout (once; only its hash is kept) and the details on
stderr. Errors print one line on stderr and exit with status 2; changes are audited as "cli".
"""

from __future__ import annotations

from typing import NoReturn

import click
from flask.cli import AppGroup

from cms.audit import Actor
from cms.auth.tokens import NAME_MAX, create_token, list_tokens, parse_lifetime, revoke_token
from cms.errors import DomainError
from cms.extensions import db

CLI_ACTOR = Actor.system("cli")

token_group = AppGroup("token", help="Manage admin API tokens (Authorization: Bearer TOKEN).")


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(2)


@token_group.command("create")
@click.argument("username")
@click.option("--name", help=f"What the token is for (at most {NAME_MAX} characters).")
@click.option("--expires-in", "expires_in", metavar="LIFETIME",
              help="Refuse the token after this long: 30d, 12h, 90m, 2w (default: until revoked).")
def create_command(username: str, name: str | None, expires_in: str | None) -> None:
    """Create a token for admin USERNAME and print it once."""
    try:
        lifetime = parse_lifetime(expires_in) if expires_in is not None else None
        row, token = create_token(db.session, CLI_ACTOR, username, name, lifetime)
    except DomainError as error:
        _fail(error.message)
    click.echo(token)
    until = (f"until {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else "until revoked")
    click.echo(f"Token #{row.id} {row.name!r} acts as {row.user.username} {until}. It is shown "
               f"only this once; revoke it with: flask token revoke {row.id}", err=True)


@token_group.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
def revoke_command(token_id: int) -> None:
    """Revoke token ID: requests with it get 401 at once."""
    try:
        revoked = revoke_token(db.session, CLI_ACTOR, token_id)
    except DomainError as error:
        _fail(error.message)
    click.echo(f"Token #{token_id} revoked." if revoked else f"Token #{token_id} was already revoked.")


@token_group.command("list")
def list_command() -> None:
    """List tokens (never the tokens themselves): id, user, name, created, last used, status."""
    rows = [("ID", "USER", "NAME", "CREATED (UTC)", "LAST USED", "EXPIRES", "STATUS")]
    for token in list_tokens(db.session):
        rows.append((
            str(token.id),
            token.username,
            token.name,
            token.created_at.strftime("%Y-%m-%d %H:%M"),
            token.last_used_at.strftime("%Y-%m-%d %H:%M") if token.last_used_at else "never",
            token.expires_at.strftime("%Y-%m-%d %H:%M") if token.expires_at else "never",
            token.status(),
        ))
    if len(rows) == 1:
        click.echo("No tokens.")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
