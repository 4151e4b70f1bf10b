"""Mail from plugins: queued in the outbox with the call's transaction; its sender may undo it
for `mail_undo_s`; then a worker's courier (cms.plugins.courier), never the request, hands it to
the configured SMTP relay. Without a relay the outbox is where mail stays."""

from __future__ import annotations

import logging
import re
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from cms.errors import Conflict, NotFound
from cms.models import Activity, ActivityKind, OutboxMail, utcnow

logger = logging.getLogger(__name__)

ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
SMTP_TIMEOUT_S = 5.0
#: At most this many mails per courier round (one SMTP connection).
DELIVERY_BATCH = 50
#: A claim lasts this long: mail a dead worker had claimed is claimed again after it (so a mail
#: is delivered at least once; twice only if a worker died between the relay and its commit).
CLAIM_LEASE = timedelta(minutes=5)


class MailRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def queue_mail(session: Session, *, agency_id: int, user_id: int, client_id: int | None,
               plugin_id: str, to: object, subject: object, body: object,
               undo_s: int = 0) -> OutboxMail:
    """Add a queued mail to the outbox (flushed, not committed), due after `undo_s` seconds.
    Raises MailRefused."""
    if not isinstance(to, str) or len(to) > 254 or not ADDRESS.match(to) or ".." in to:
        raise MailRefused("bad_address", f"{str(to)[:80]!r} is not an e-mail address")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 200 or "\n" in subject:
        raise MailRefused("bad_args", "subject must be one line of 1 to 200 characters")
    if not isinstance(body, str) or not body.strip() or len(body) > 20_000:
        raise MailRefused("bad_args", "body must be 1 to 20,000 characters")
    now = utcnow()
    mail = OutboxMail(agency_id=agency_id, user_id=user_id, client_id=client_id,
                      plugin_id=plugin_id, to_addr=to, subject=subject, body=body, created_at=now,
                      deliver_after=now + timedelta(seconds=undo_s))
    session.add(mail)
    session.flush()
    return mail


def claim_due(session: Session, now: datetime, limit: int = DELIVERY_BATCH) -> list[OutboxMail]:
    """Mark queued mail past its undo window (and mail whose claim has lapsed) as `sending` for
    CLAIM_LEASE and return it (committed). Each claim is a compare-and-set on the status and
    the time it was due, so two workers, or a courier and an undo, never both win the same mail."""
    due = session.execute(select(OutboxMail.id, OutboxMail.status, OutboxMail.deliver_after).where(
        or_(OutboxMail.status == "queued", OutboxMail.status == "sending"),
        or_(OutboxMail.deliver_after.is_(None), OutboxMail.deliver_after <= now),
    ).order_by(OutboxMail.id).limit(limit)).all()
    claimed = []
    for mail_id, status, due_at in due:
        same_due = (OutboxMail.deliver_after.is_(None) if due_at is None
                    else OutboxMail.deliver_after == due_at)
        if session.execute(update(OutboxMail).where(
                OutboxMail.id == mail_id, OutboxMail.status == status, same_due)
                .values(status="sending", deliver_after=now + CLAIM_LEASE)).rowcount == 1:
            claimed.append(mail_id)
    session.commit()
    if not claimed:
        return []
    return list(session.scalars(select(OutboxMail).where(OutboxMail.id.in_(claimed))
                                .order_by(OutboxMail.id)))


def deliver_due(session: Session, smtp_url: str, sender: str, now: datetime | None = None) -> int:
    """Send the mail that is due through the relay; record sent/failed and commit. Returns how
    many were handed over (sent or failed)."""
    mails = claim_due(session, now or utcnow())
    if not mails:
        return 0
    parts = urlsplit(smtp_url)
    try:
        with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25,
                          timeout=SMTP_TIMEOUT_S) as smtp:
            for mail in mails:
                message = EmailMessage()
                message["From"], message["To"], message["Subject"] = sender, mail.to_addr, mail.subject
                message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
                message.set_content(mail.body)
                smtp.send_message(message)
                mail.status, mail.sent_at, mail.error = "sent", utcnow(), None
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("mail relay %s failed: %s", parts.hostname, exc)
        for mail in mails:
            if mail.status != "sent":
                mail.status, mail.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
    session.commit()
    return len(mails)


def undo(session: Session, mail_id: int, *, user_id: int, agency_id: int) -> OutboxMail:
    """Undo a mail its sender queued, before the courier takes it: it is kept as `undone` and
    the client's timeline says so (committed). Raises NotFound for anyone else's mail and
    Conflict once it has left."""
    mail = session.get(OutboxMail, mail_id)
    if mail is None or mail.agency_id != agency_id or mail.user_id != user_id:
        raise NotFound("There is no such mail of yours to undo.")
    taken = session.execute(update(OutboxMail).where(
        OutboxMail.id == mail_id, OutboxMail.status == "queued").values(status="undone")).rowcount
    if taken != 1:
        session.rollback()
        session.refresh(mail)
        raise Conflict("This mail was already undone." if mail.status == "undone" else
                       f"Too late to undo: the mail to {mail.to_addr} has already gone to the relay.")
    if mail.client_id is not None:
        session.add(Activity(agency_id=agency_id, client_id=mail.client_id, user_id=user_id,
                             kind=ActivityKind.MAIL.value,
                             body=f"Mail not sent (undone): {mail.subject}",
                             data={"mail_id": mail.id, "to": mail.to_addr, "undone": True}))
    session.commit()
    session.refresh(mail)
    return mail


def outbox(session: Session, agency_id: int | None, limit: int = 100) -> list[OutboxMail]:
    """The newest outbox mails: of one agency, or of every agency for `agency_id=None` (admins)."""
    stmt = select(OutboxMail).order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc()).limit(limit)
    if agency_id is not None:
        stmt = stmt.where(OutboxMail.agency_id == agency_id)
    return list(session.scalars(stmt))
