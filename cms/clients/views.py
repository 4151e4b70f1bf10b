"""Agent pages (stub: filled in by the clients work)."""

from __future__ import annotations

from flask import render_template
from flask_login import login_required

from cms.clients import bp


@bp.route("/")
@login_required
def dashboard() -> str:
    return render_template("clients/dashboard.html")


@bp.route("/clients")
@login_required
def search() -> str:
    return render_template("clients/dashboard.html")


@bp.route("/clients/new")
@login_required
def new_client() -> str:
    return render_template("clients/dashboard.html")
