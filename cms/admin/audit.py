"""The audit log page and its CSV export."""

from __future__ import annotations

from flask import Response, render_template, request, stream_with_context

from cms.admin.forms import AuditFilterForm
from cms.admin.views import bp, page_number, show_field_errors
from cms.app_state import current_actor
from cms.auth.access import admin_required
from cms.errors import ValidationFailed, wants_json
from cms.extensions import db
from cms.models import utcnow
from cms.users.audit_log import AuditFilters, export_audit_csv, query_audit

BAD_FILTERS = "Please check the filters: dates are YYYY-MM-DD and 'from' is on or before 'to'."


def _filters(form: AuditFilterForm) -> AuditFilters:
    """The form's filters; raises ValidationFailed (bad dates or over-long text)."""
    if not form.validate():
        raise ValidationFailed(BAD_FILTERS, dict(form.errors))  # type: ignore[arg-type]
    return AuditFilters(
        actor=form.actor.data or "",
        action=form.action.data or "",
        date_from=form.date_from.data,
        date_to=form.date_to.data,
    )


@bp.route("/audit")
@admin_required
def audit() -> Response | str | tuple[str, int]:
    form = AuditFilterForm(request.args)
    try:
        filters = _filters(form)
        page = query_audit(db.session, filters, page_number())
    except ValidationFailed as error:
        if wants_json():
            raise
        show_field_errors(form, error)
        return render_template(
            "admin/audit.html", form=form, page=None, filters=None, error=error.message
        ), 422
    return render_template("admin/audit.html", form=form, page=page, filters=filters)


@bp.route("/audit.csv")
@admin_required
def audit_csv() -> Response:
    filters = _filters(AuditFilterForm(request.args))
    rows = export_audit_csv(db.session, current_actor(), filters)
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
