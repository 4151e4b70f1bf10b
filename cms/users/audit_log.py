"""Reading the audit trail: filtered pages (newest first) and a streamed CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cms.audit import Actor, record_event
from cms.errors import ValidationFailed
from cms.models import AuditEvent
from cms.paging import Page, paginate

# Counting stops here: the log grows by every login, and nobody pages past a few hundred pages.
COUNT_CAP = 10_000
EXPORT_BATCH = 500
CSV_COLUMNS = [
    "time", "actor", "action", "target type", "target id", "target label",
    "agency id", "ip", "request id", "before", "after",
]
# A spreadsheet treats cells starting with these as formulas.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AuditFilters:
    """Actor name prefix; action exact, or a prefix when it ends in "." or "*"; inclusive UTC dates."""

    actor: str = ""
    action: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def query_args(self) -> dict[str, str]:
        """The filters as URL query arguments (empty ones left out)."""
        args = {
            "actor": self.actor,
            "action": self.action,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in args.items() if v}


def _statement(filters: AuditFilters) -> Select[Any]:
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise ValidationFailed(
            "The start date is after the end date.",
            {"date_from": ["Must be on or before the end date."]},
        )
    stmt = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    actor = filters.actor.strip().lower()
    if actor:
        stmt = stmt.where(AuditEvent.actor_name.startswith(actor, autoescape=True))
    action = filters.action.strip().lower()
    if action.endswith("*") or action.endswith("."):
        prefix = action.rstrip("*")
        if prefix:
            stmt = stmt.where(AuditEvent.action.startswith(prefix, autoescape=True))
    elif action:
        stmt = stmt.where(AuditEvent.action == action)
    if filters.date_from:
        start = datetime.combine(filters.date_from, time.min, tzinfo=timezone.utc)
        stmt = stmt.where(AuditEvent.created_at >= start)
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=timezone.utc)
        stmt = stmt.where(AuditEvent.created_at < end)
    return stmt


def query_audit(
    session: Session, filters: AuditFilters, page: int = 1, per_page: int = 50
) -> Page[AuditEvent]:
    """Return a page of matching events, newest first; raises ValidationFailed (from > to)."""
    return paginate(session, _statement(filters), page, per_page, count_cap=COUNT_CAP)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _json(value: dict[str, Any] | None) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _csv_row(event: AuditEvent) -> list[str]:
    when = event.created_at.astimezone(timezone.utc).isoformat(timespec="seconds")
    return [
        _cell(when.replace("+00:00", "Z")),
        _cell(event.actor_name),
        _cell(event.action),
        _cell(event.target_type),
        _cell(event.target_id),
        _cell(event.target_label),
        _cell(event.agency_id),
        _cell(event.ip),
        _cell(event.request_id),
        _cell(_json(event.before)),
        _cell(_json(event.after)),
    ]


def export_audit_csv(session: Session, actor: Actor, filters: AuditFilters) -> Iterator[str]:
    """Audit the export, then return an iterator of CSV text (header first, newest first).

    Raises ValidationFailed (from > to) before writing or yielding anything.
    """
    stmt = _statement(filters).execution_options(yield_per=EXPORT_BATCH)
    record_event(session, actor, "audit.export", target_type="audit_log", after=filters.query_args())
    session.commit()

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for n, event in enumerate(session.scalars(stmt), start=1):
            writer.writerow(_csv_row(event))
            if n % EXPORT_BATCH == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return generate()
