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
#: At most this many mails per courier round (one SMTP connection): a round's worst case,
#: every mail at the SMTP timeout, stays well inside the claim's lease.
DELIVERY_BATCH = 20
#: A claim lasts this long: mail a dead worker had claimed is claimed again after it (so a mail
#: is delivered at least once; twice only if a worker died between the relay and its commit).
CLAIM_LEASE = timedelta(minutes=5)
#: A relay that is down or answers 4xx is tried again after 30 s, 1, 2, 4 min; then failed.
MAX_ATTEMPTS = 5
RETRY_FIRST = timedelta(seconds=30)


class MailRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def queue_mail(session: Session, *, agency_id: int, user_id: int, client_id: int | None,
               plugin_id: str, to: object, subject: object, body: object,
               undo_s: int | None = 0) -> OutboxMail:
    """Add a queued mail to the outbox (flushed, not committed), due after `undo_s` seconds;
    `undo_s=None` (no relay) keeps it in the outbox, where no courier takes it. Raises
    MailRefused."""
    if not isinstance(to, str) or len(to) > 254 or not ADDRESS.match(to) or ".." in to:
        raise MailRefused("bad_address", f"{str(to)[:80]!r} is not an e-mail address")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 200 or "\n" in subject:
        raise MailRefused("bad_args", "subject must be one line of 1 to 200 characters")
    if not isinstance(body, str) or not body.strip() or len(body) > 20_000:
        raise MailRefused("bad_args", "body must be 1 to 20,000 characters")
    now = utcnow()
    mail = OutboxMail(agency_id=agency_id, user_id=user_id, client_id=client_id,
                      plugin_id=plugin_id, to_addr=to, subject=subject, body=body, created_at=now,
                      deliver_after=None if undo_s is None else now + timedelta(seconds=undo_s))
    session.add(mail)
    session.flush()
    return mail


def claim_due(session: Session, now: datetime, limit: int = DELIVERY_BATCH) -> list[OutboxMail]:
    """Mark queued mail that is due (and mail whose claim has lapsed) as `sending` for
    CLAIM_LEASE and return it (committed; its `deliver_after` is the lease's end). Each claim is
    a compare-and-set on the status and the due time, so two workers, or a courier and an undo,
    never both win the same mail. Mail without a due time is kept, never claimed."""
    due = session.execute(select(OutboxMail.id, OutboxMail.status, OutboxMail.deliver_after).where(
        or_(OutboxMail.status == "queued", OutboxMail.status == "sending"),
        OutboxMail.deliver_after.is_not(None), OutboxMail.deliver_after <= now,
    ).order_by(OutboxMail.deliver_after, OutboxMail.id).limit(limit)).all()
    claimed = [mail_id for mail_id, status, due_at in due if session.execute(
        update(OutboxMail).where(OutboxMail.id == mail_id, OutboxMail.status == status,
                                 OutboxMail.deliver_after == due_at)
        .values(status="sending", deliver_after=now + CLAIM_LEASE)).rowcount == 1]
    session.commit()
    if not claimed:
        return []
    return list(session.scalars(select(OutboxMail).where(OutboxMail.id.in_(claimed))
                                .order_by(OutboxMail.id)).all())


def _settle(session: Session, mail: OutboxMail, lease: datetime | None, **values: object) -> bool:
    """Record one mail's outcome (committed) if this courier still holds its claim."""
    done = session.execute(update(OutboxMail).where(
        OutboxMail.id == mail.id, OutboxMail.status == "sending", OutboxMail.deliver_after == lease)
        .values(**values)).rowcount == 1
    session.commit()
    return done


def _retry_or_fail(session: Session, mail: OutboxMail, lease: datetime | None, now: datetime,
                   error: str) -> None:
    """The relay turned the mail away for now: queue it again with a backoff, or fail it."""
    attempts = mail.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        _settle(session, mail, lease, status="failed", attempts=attempts,
                error=f"{error} (after {attempts} attempts)"[:300])
    else:
        _settle(session, mail, lease, status="queued", attempts=attempts, error=error[:300],
                deliver_after=now + RETRY_FIRST * 2 ** (attempts - 1))


def deliver_due(session: Session, smtp_url: str, sender: str, now: datetime | None = None) -> int:
    """Hand the mail that is due to the relay, one outcome committed per mail: `sent`; `failed`
    for a permanent refusal (5xx) of that mail alone; queued again with a backoff when the
    relay is down or answers 4xx (failed after MAX_ATTEMPTS). Returns how many it claimed."""
    now = now or utcnow()
    mails = claim_due(session, now)
    if not mails:
        return 0
    leases = {mail.id: mail.deliver_after for mail in mails}
    parts = urlsplit(smtp_url)
    pending = list(mails)
    try:
        with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25,
                          timeout=SMTP_TIMEOUT_S) as smtp:
            while pending:
                mail = pending[0]
                message = EmailMessage()
                message["From"], message["To"], message["Subject"] = sender, mail.to_addr, mail.subject
                message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
                message.set_content(mail.body)
                try:
                    smtp.send_message(message)
                except smtplib.SMTPRecipientsRefused as exc:
                    code, text = next(iter(exc.recipients.values()))
                    _refused(session, mail, leases[mail.id], now, code, text)
                except smtplib.SMTPResponseException as exc:  # sender or data refused
                    _refused(session, mail, leases[mail.id], now, exc.smtp_code, exc.smtp_error)
                else:
                    _settle(session, mail, leases[mail.id], status="sent", sent_at=utcnow(),
                            error=None)
                pending.pop(0)
    except (OSError, smtplib.SMTPException) as exc:  # the relay is down or dropped us
        logger.warning("mail relay %s failed: %s", parts.hostname, exc)
        for mail in pending:
            _retry_or_fail(session, mail, leases[mail.id], now, f"{type(exc).__name__}: {exc}")
    return len(mails)


def _refused(session: Session, mail: OutboxMail, lease: datetime | None, now: datetime,
             code: int, text: bytes | str) -> None:
    reason = f"the relay answered {code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if 400 <= code < 500:
        _retry_or_fail(session, mail, lease, now, reason)
    else:
        _settle(session, mail, lease, status="failed", error=reason[:300])


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
        # The timeline says what happened: the entry the plugin wrote about this mail is marked,
        # so it does not go on saying "sent"; without one, an entry is added.
        noted = next((a for a in session.scalars(select(Activity).where(
            Activity.client_id == mail.client_id, Activity.kind == ActivityKind.MAIL.value)
            .order_by(Activity.id.desc()).limit(50))
            if isinstance(a.data, dict) and a.data.get("mail_id") == mail.id), None)
        if noted is not None:
            noted.body = f"Not sent (undone): {noted.body}"[:4000]
            noted.data = {**noted.data, "undone": True}
        else:
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
