"""Alert delivery off the request path: JSON webhooks with retries and back-off, and mail to the
admins through the SMTP relay. One background thread per process sends; it starts on the first
alert and stops after a quiet minute. A flood is capped at `max_per_minute` notifications.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Callable
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

IDLE_S = 60.0
SMTP_TIMEOUT_S = 5.0


class DeliveryError(Exception):
    """A notification could not be delivered; `permanent` ones are not retried."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Job:
    payload: dict[str, Any]
    recipients: tuple[str, ...] = ()


@dataclass
class Notifier:
    """Sends alert notifications from a background thread; `send` never blocks."""

    webhooks: tuple[str, ...] = ()
    smtp_url: str | None = None
    mail_from: str = "noreply@cms.local"
    attempts: int = 4
    backoff_s: float = 0.5
    timeout_s: float = 5.0
    max_per_minute: int = 10
    #: Called with (channel, outcome) after each delivery: ("webhook", "sent"), ("email", "failed").
    on_result: Callable[[str, str], None] | None = None
    suppressed: int = 0
    _queue: "queue.Queue[Job]" = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _pid: int | None = None
    _sent_at: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def enabled(self) -> bool:
        return bool(self.webhooks or self.smtp_url)

    def send(self, payload: dict[str, Any], recipients: list[str] | tuple[str, ...] = ()) -> bool:
        """Queue one notification; False when there is nowhere to send it or the per-minute cap
        is reached (the next one that goes out says how many were held back)."""
        if not self.webhooks and not (self.smtp_url and recipients):
            return False
        now = time.monotonic()
        with self._lock:
            while self._sent_at and self._sent_at[0] < now - 60:
                self._sent_at.popleft()
            if len(self._sent_at) >= self.max_per_minute:
                self.suppressed += 1
                logger.warning("alert notification held back (over %d a minute): %s",
                               self.max_per_minute, payload.get("alert", {}).get("message"))
                return False
            self._sent_at.append(now)
            if self.suppressed:
                payload = {**payload, "suppressed_before": self.suppressed}
                self.suppressed = 0
            self._queue.put(Job(payload, tuple(recipients if self.smtp_url else ())))
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="cms-alerts", daemon=True)
                self._thread.start()
        return True

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued notification was handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                for url in self.webhooks:
                    self._report("webhook", self._deliver(url, job.payload))
                if self.smtp_url and job.recipients:
                    self._report("email", self._mail(job))
            except Exception:  # never let the sender thread die
                logger.exception("alert delivery failed")
            finally:
                self._queue.task_done()

    def _report(self, channel: str, ok: bool) -> None:
        if self.on_result is not None:
            self.on_result(channel, "sent" if ok else "failed")

    def _deliver(self, url: str, payload: dict[str, Any]) -> bool:
        """POST `payload` to `url`, retrying with exponential back-off; True when delivered."""
        body = json.dumps(payload, default=str).encode("utf-8")
        for attempt in range(1, self.attempts + 1):
            try:
                post_json(url, body, self.timeout_s)
                logger.info("alert %s sent to webhook %s (attempt %d)",
                            payload.get("alert", {}).get("id"), urlsplit(url).netloc, attempt)
                return True
            except DeliveryError as exc:
                logger.warning("alert webhook %s, attempt %d of %d: %s", urlsplit(url).netloc,
                               attempt, self.attempts, exc)
                if exc.permanent or attempt == self.attempts:
                    return False
            time.sleep(self.backoff_s * 2 ** (attempt - 1))
        return False

    def _mail(self, job: Job) -> bool:
        alert = job.payload.get("alert", {})
        message = EmailMessage()
        message["From"], message["To"] = self.mail_from, ", ".join(job.recipients)
        message["Subject"] = (f"[CMS {alert.get('severity', 'alert')}] "
                              f"{str(alert.get('kind', '')).replace('_', ' ')}: {alert.get('subject')}")
        message["Message-ID"] = make_msgid(domain=self.mail_from.rpartition("@")[2] or None)
        message.set_content(mail_text(job.payload))
        parts = urlsplit(self.smtp_url or "")
        try:
            with smtplib.SMTP(parts.hostname or "127.0.0.1", parts.port or 25,
                              timeout=SMTP_TIMEOUT_S) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            logger.warning("alert mail through %s failed: %s", parts.hostname, exc)
            return False
        return True


def post_json(url: str, body: bytes, timeout_s: float) -> None:
    """POST a JSON body; raises DeliveryError (permanent for 4xx other than 408 and 429)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "cms-alerts/1"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        raise DeliveryError(f"HTTP {exc.code}", permanent) from None
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None


def mail_text(payload: dict[str, Any]) -> str:
    alert = payload.get("alert", {})
    lines = [
        str(alert.get("message", "")),
        "",
        f"Kind:       {alert.get('kind')} ({alert.get('severity')})",
        f"Subject:    {alert.get('subject')}",
        f"First seen: {alert.get('first_seen')}",
        f"Seen:       {alert.get('count')} times, last {alert.get('last_seen')}",
    ]
    if alert.get("quarantined"):
        lines.append("Action:     the version was quarantined; agents get the previous version.")
    if payload.get("suppressed_before"):
        lines.append(f"Note:       {payload['suppressed_before']} notifications were held back "
                     "before this one (flood limit); see the alerts page.")
    lines += ["", f"Alerts page: {payload.get('page')}  (acknowledge it there)",
              f"Runbook:     {payload.get('runbook')}"]
    return "\n".join(lines) + "\n"
