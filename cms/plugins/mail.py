"""Mail from plugins: queued in the outbox with the call's transaction, delivered after commit
through the configured SMTP relay (without one, the outbox is where mail stays)."""

from __future__ import annotations

import logging
import re
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from cms.models import OutboxMail, utcnow

logger = logging.getLogger(__name__)

ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
SMTP_TIMEOUT_S = 5.0


class MailRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def queue_mail(session: Session, *, agency_id: int, user_id: int, client_id: int | None,
               plugin_id: str, to: object, subject: object, body: object) -> OutboxMail:
    """Add a queued mail to the outbox (flushed, not committed). Raises MailRefused."""
    if not isinstance(to, str) or len(to) > 254 or not ADDRESS.match(to) or ".." in to:
        raise MailRefused("bad_address", f"{str(to)[:80]!r} is not an e-mail address")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 200 or "\n" in subject:
        raise MailRefused("bad_args", "subject must be one line of 1 to 200 characters")
    if not isinstance(body, str) or not body.strip() or len(body) > 20_000:
        raise MailRefused("bad_args", "body must be 1 to 20,000 characters")
    mail = OutboxMail(agency_id=agency_id, user_id=user_id, client_id=client_id,
                      plugin_id=plugin_id, to_addr=to, subject=subject, body=body)
    session.add(mail)
    session.flush()
    return mail


def deliver(session: Session, mail_ids: list[int], smtp_url: str | None, sender: str) -> None:
    """Send committed outbox mails through the relay; record sent/failed and commit.

    Without a relay the mails stay queued in the outbox, where agents and admins see them.
    """
    if not smtp_url or not mail_ids:
        return
    mails = list(session.scalars(select(OutboxMail).where(OutboxMail.id.in_(mail_ids))))
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


def outbox(session: Session, agency_id: int | None, limit: int = 100) -> list[OutboxMail]:
    """The newest outbox mails: of one agency, or of every agency for `agency_id=None` (admins)."""
    stmt = select(OutboxMail).order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc()).limit(limit)
    if agency_id is not None:
        stmt = stmt.where(OutboxMail.agency_id == agency_id)
    return list(session.scalars(stmt))
