"""Admin pages for flags under /admin/flags (routes on the admin blueprint, admins only)."""

from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from cms.admin.views import bp, show_field_errors
from cms.app_state import current_actor, state
from cms.auth.access import admin_required
from cms.errors import Conflict, ValidationFailed
from cms.extensions import db
from cms.ids import parse_id
from cms.flags.forms import FlagForm, split_list
from cms.flags.service import (
    FlagView,
    config_version,
    flag_history,
    get_flag,
    list_flags,
    set_flag,
)

View = Response | str | tuple[str, int]


def _applied_version() -> int | None:
    """The config version this worker evaluates flags with (read now if it has none yet)."""
    snapshot = state().flags.snapshot()
    return None if snapshot is None else snapshot.version


def applied(version: int) -> dict[str, object]:
    """How many live workers (on every host, with Redis) run with config `version` or later."""
    from cms import monitoring

    monitor = monitoring.current()
    if monitor is None:
        mine = _applied_version()
        done = mine is not None and mine >= version
        return {"version": version, "applied": int(done), "workers": 1, "shared": False,
                "done": done, "text": f"applied on {int(done)} of 1 worker (this one)"}
    count, total, shared = monitor.workers_applied(version)
    text = f"applied on {count} of {total} worker{'s' if total != 1 else ''}"
    if not shared:
        text += " (only this worker is seen: no Redis)"
    return {"version": version, "applied": count, "workers": total, "shared": shared,
            "done": total > 0 and count >= total, "text": text}


@bp.route("/flags/applied.json")
@admin_required
def flags_applied() -> Response:
    """For the flag pages' live "applied on N of M workers" (static/js/app.js polls it)."""
    version = parse_id(request.args.get("version"), "version") or config_version(db.session)
    return jsonify(applied(version))


@bp.route("/flags")
@admin_required
def flags() -> View:
    version = config_version(db.session)
    return render_template(
        "admin/flags.html", flags=list_flags(db.session), db_version=version,
        applied=applied(version),
    )


def _prefill(form: FlagForm, flag: FlagView) -> None:
    form.state.data = "on" if flag.enabled else "off"
    form.rollout_percent.data = flag.rollout_percent
    form.agents.data = ", ".join(map(str, flag.targeting["agents"]))
    form.agencies.data = ", ".join(map(str, flag.targeting["agencies"]))
    form.roles.data = ", ".join(flag.targeting["roles"])


def _render(flag: FlagView, form: FlagForm, status: int = 200, error: str | None = None) -> View:
    form.confirm_off.label.text = f"I understand this turns {flag.key} off for every agent"
    return render_template(
        "admin/flag_detail.html", flag=flag, form=form, error=error,
        history=flag_history(db.session, flag.key), db_version=config_version(db.session),
        applied=applied(config_version(db.session)),
    ), status


def _turns_kill_switch_off(flag: FlagView, form: FlagForm) -> bool:
    return flag.kind == "kill_switch" and flag.enabled and form.state.data == "off"


@bp.route("/flags/<key>", methods=["GET", "POST"])
@admin_required
def flag_detail(key: str) -> View:
    flag = get_flag(db.session, key)
    if request.method == "GET":
        form = FlagForm(formdata=None)
        _prefill(form, flag)
        return _render(flag, form)
    form = FlagForm()
    if not form.validate_on_submit():
        return _render(flag, form, 422)
    if _turns_kill_switch_off(flag, form) and not form.confirm_off.data:
        form.confirm_off.errors = ["Tick this box to confirm: a kill switch turns the feature off "
                                   "for every agent at once."]
        return _render(flag, form, 422)
    try:
        updated = set_flag(
            db.session, current_actor(), flag.key,
            enabled=form.state.data == "on",
            rollout_percent=form.rollout_percent.data,
            targeting={"agents": split_list(form.agents.data),
                       "agencies": split_list(form.agencies.data),
                       "roles": split_list(form.roles.data)},
            reason=form.reason.data or "",
            notify=state().flags.changed,
        )
    except (ValidationFailed, Conflict) as failure:
        show_field_errors(form, failure)
        return _render(flag, form, failure.status, failure.message)
    if updated.version == flag.version and updated.updated_at == flag.updated_at:
        flash("Nothing changed: the flag already had these settings.", "info")
    else:
        state_text = "on" if updated.enabled else "off"
        flash(f"{updated.key} is now {state_text} at {updated.rollout_percent}%. Every worker "
              "applies it within a second or two.", "success")
    return redirect(url_for("admin.flag_detail", key=updated.key), code=303)
