"""Admin page for API tokens: every token with its admin, last use, expiry and status; revoke.
Tokens are created with `flask token create USER [--expires-in 30d]` (shown once)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from cms.admin.views import bp
from cms.app_state import current_actor
from cms.auth.access import admin_required
from cms.auth.tokens import list_tokens, revoke_token
from cms.extensions import db
from cms.models import utcnow


@bp.route("/tokens")
@admin_required
def tokens() -> str:
    return render_template("admin/tokens.html", tokens=list_tokens(db.session), now=utcnow())


@bp.route("/tokens/<id:token_id>/revoke", methods=["POST"])
@admin_required
def token_revoke(token_id: int) -> Response:
    revoked = revoke_token(db.session, current_actor(), token_id)
    flash(f"Token #{token_id} revoked: requests with it now get 401." if revoked
          else f"Token #{token_id} was already revoked.", "success")
    return redirect(url_for("admin.tokens"), code=303)
