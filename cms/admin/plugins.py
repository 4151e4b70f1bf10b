"""Admin pages for plugins: installs and their versions, upload with the staging gate, canary,
promotion, rollback, quarantine release, and the trusted author keys."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from cms import monitoring
from cms.admin.views import bp, show_field_errors
from cms.app_state import current_actor, state
from cms.auth.access import admin_required
from cms.errors import DomainError
from cms.extensions import db
from cms.models import PluginInstall, TrustedKey
from cms.plugins import lifecycle
from plugin_sdk.package import MAX_PACKAGE_BYTES

View = Response | str | tuple[str, int]


class UploadForm(FlaskForm):
    package = FileField("Package (.cmsplugin)", validators=[FileRequired("Choose a .cmsplugin file.")])


class ReleaseForm(FlaskForm):
    version = SelectField("Version", validate_choice=False)
    percent = IntegerField("Canary: share of agents (%)", default=10,
                           validators=[Optional(), NumberRange(0, 100)])
    reason = StringField("Reason", validators=[DataRequired("Say why: it goes into the audit log."),
                                               Length(min=3, max=500)])
    approve_capabilities = BooleanField("I approve the new capabilities listed above")
    override_gate = StringField("Override the staging gate, because…", validators=[Length(max=500)])


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("Say why: it goes into the audit log."),
                                               Length(min=3, max=500)])
    version = StringField("Version", validators=[Optional(), Length(max=64)])


class TrustedKeyForm(FlaskForm):
    name = StringField("Whose key", validators=[DataRequired(), Length(max=80)])
    public_key = TextAreaField("Public key (cms-plugin-ed25519:…)", validators=[DataRequired(), Length(max=200)])


@bp.route("/plugins", methods=["GET", "POST"])
@admin_required
def plugins() -> View:
    form = UploadForm()
    installs = list(db.session.scalars(db.select(PluginInstall).order_by(PluginInstall.plugin_id)))
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            data = form.package.data.read(MAX_PACKAGE_BYTES + 1)
            try:
                row = lifecycle.upload(db.session, current_actor(), data,
                                       state().runtime.config.caps,
                                       state().runtime.config.artifact_dir)
            except DomainError as error:
                db.session.rollback()
                form.package.errors = [error.message]
                status = error.status
            else:
                flash(f"{row.plugin_id} {row.version} uploaded: staging gate {row.gate_status}.",
                      "success" if row.gate_status == "passed" else "error")
                return redirect(url_for("admin.plugin_detail", plugin_id=row.plugin_id), code=303)
        else:
            status = 422
    from cms.flags.service import list_flags

    versions = {i.plugin_id: {r.version: r for r in lifecycle.versions(db.session, i.plugin_id)}
                for i in installs}
    switches = {f.key: f for f in list_flags(db.session) if f.key.startswith("plugin.")}
    return render_template("admin/plugins.html", installs=installs, versions=versions,
                           switches=switches, form=form), status


def _render_detail(plugin_id: str, release: ReleaseForm | None = None,
                   reason_form: ReasonForm | None = None, status: int = 200) -> View:
    install = lifecycle.get_install(db.session, plugin_id)
    rows = lifecycle.versions(db.session, plugin_id)
    release = release or ReleaseForm(formdata=None)
    # The current version cannot be released again: it is not offered.
    release.version.choices = [(r.version, f"{r.version} · gate {r.gate_status}"
                                f"{' · quarantined' if r.quarantined_at else ''}") for r in rows
                               if r.version != install.version]
    diffs = {r.version: lifecycle.new_capabilities(install, lifecycle.manifest_of(r)) for r in rows}
    return render_template("admin/plugin_detail.html", install=install, rows=rows, diffs=diffs,
                           release=release, reason_form=reason_form or ReasonForm(formdata=None),
                           evidence=_evidence(install)), status


def _evidence(install: PluginInstall) -> lifecycle.CanaryEvidence | None:
    return monitoring.canary_evidence(install.plugin_id, install.canary_version,
                                      install.canary_percent, install.version)


@bp.route("/plugins/<plugin_id>")
@admin_required
def plugin_detail(plugin_id: str) -> View:
    return _render_detail(plugin_id)


@bp.route("/plugins/<plugin_id>/release", methods=["POST"])
@admin_required
def plugin_release(plugin_id: str) -> View:
    """Canary (with a percentage) or promote, by the button pressed."""
    form = ReleaseForm()
    form.version.choices = [(request.form.get("version", ""), "")]
    if not form.validate_on_submit():
        return _render_detail(plugin_id, form, status=422)
    release = lifecycle.Release(form.reason.data or "", bool(form.approve_capabilities.data),
                                form.override_gate.data or None)
    try:
        if request.form.get("do") == "promote":
            lifecycle.promote(db.session, current_actor(), plugin_id, form.version.data or "", release,
                              notify=state().flags.changed,
                              evidence=_evidence(lifecycle.get_install(db.session, plugin_id)))
            flash(f"{plugin_id} {form.version.data} is now the current version for every agent.", "success")
        else:
            lifecycle.set_canary(db.session, current_actor(), plugin_id, form.version.data or "",
                                 form.percent.data or 0, release,
                                 notify=state().flags.changed)
            flash(f"{plugin_id} {form.version.data} goes to {form.percent.data or 0} % of agents.", "success")
    except DomainError as error:
        db.session.rollback()
        show_field_errors(form, error)
        flash(error.message, "error")
        return _render_detail(plugin_id, form, status=error.status)
    return redirect(url_for("admin.plugin_detail", plugin_id=plugin_id), code=303)


@bp.route("/plugins/<plugin_id>/rollback", methods=["POST"])
@admin_required
def plugin_rollback(plugin_id: str) -> View:
    form = ReasonForm()
    if not form.validate_on_submit():
        flash("A reason is required to roll back.", "error")
        return _render_detail(plugin_id, reason_form=form, status=422)
    try:
        install = lifecycle.rollback(db.session, current_actor(), plugin_id, form.reason.data or "",
                                     notify=state().flags.changed)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return _render_detail(plugin_id, reason_form=form, status=error.status)
    flash(f"Rolled back: agents get {plugin_id} {install.version}.", "success")
    return redirect(url_for("admin.plugin_detail", plugin_id=plugin_id), code=303)


@bp.route("/plugins/<plugin_id>/release-quarantine", methods=["POST"])
@admin_required
def plugin_release_quarantine(plugin_id: str) -> View:
    form = ReasonForm()
    if not form.validate_on_submit():
        flash("A reason is required to release a quarantine.", "error")
        return _render_detail(plugin_id, reason_form=form, status=422)
    try:
        lifecycle.release_quarantine(db.session, current_actor(), plugin_id,
                                     form.version.data or "", form.reason.data or "",
                                     notify=state().flags.changed)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return _render_detail(plugin_id, reason_form=form, status=error.status)
    flash(f"{plugin_id} {form.version.data} released from quarantine.", "success")
    return redirect(url_for("admin.plugin_detail", plugin_id=plugin_id), code=303)


@bp.route("/plugin-keys", methods=["GET", "POST"])
@admin_required
def plugin_keys() -> View:
    form = TrustedKeyForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                key = lifecycle.add_trusted_key(db.session, current_actor(),
                                                form.public_key.data or "", form.name.data or "")
            except DomainError as error:
                db.session.rollback()
                show_field_errors(form, error)
                form.public_key.errors = [*form.public_key.errors, error.message] \
                    if not error.details.get("fields") else form.public_key.errors
                status = error.status
            else:
                flash(f"Key {key.key_id} of {key.name} is trusted.", "success")
                return redirect(url_for("admin.plugin_keys"), code=303)
        else:
            status = 422
    keys = list(db.session.scalars(db.select(TrustedKey).order_by(TrustedKey.created_at)))
    return render_template("admin/plugin_keys.html", keys=keys, form=form), status
