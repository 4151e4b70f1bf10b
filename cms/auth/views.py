"""Login and logout pages."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from cms.app_state import client_ip, state
from cms.auth import bp
from cms.auth.forms import LoginForm
from cms.auth.service import InvalidCredentials, log_in, log_out
from cms.auth.sessions import load_session_user
from cms.errors import Throttled
from cms.extensions import db, login_manager
from cms.models import User


@login_manager.user_loader
def _load_user(token: str) -> User | None:
    settings = state().settings
    return load_session_user(db.session, token, timedelta(minutes=settings.session_idle_minutes))


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login."""
    if not target:
        return url_for("clients.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("clients.dashboard")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("clients.dashboard"))
    form = LoginForm()
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("auth/login.html", form=form), 422
        app_state = state()
        settings = app_state.settings
        try:
            user = log_in(
                db.session,
                app_state.passwords,
                app_state.throttle,
                settings.login_limits(),
                form.username.data or "",
                form.password.data or "",
                client_ip(),
                request.headers.get("User-Agent"),
                g.get("request_id"),
            )
        except Throttled as error:
            flash(error.message, "error")
            return render_template("auth/login.html", form=form), 429, {
                "Retry-After": str(error.retry_after)
            }  # type: ignore[return-value]
        except InvalidCredentials as error:
            flash(error.message, "error")
            return render_template("auth/login.html", form=form), 401
        target = _safe_next(request.args.get("next"))
        # A new session at login: nothing from the anonymous session (including its CSRF token)
        # carries over, so a planted cookie cannot be promoted into a logged-in one.
        session.clear()
        session.permanent = True
        login_user(user)
        return redirect(target)
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    log_out(db.session, current_user, client_ip(), g.get("request_id"))  # type: ignore[arg-type]
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
