"""The outbox courier: one thread per worker that hands due plugin mail to the SMTP relay.

Requests never talk to the relay. A call queues its mail with an undo window (`mail_undo_s`);
the courier wakes when a call queued mail and otherwise polls, and claims each due mail with a
compare-and-set on its status (cms.plugins.mail.claim_due), so workers on several hosts share
one outbox without sending a mail twice. Without a relay there is no courier: mail stays in the
outbox, where agents and admins see it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from flask import Flask

logger = logging.getLogger(__name__)

POLL_S = 1.0


class Courier:
    """Runs `deliver()` (one round: send what is due) on a daemon thread of this process,
    every `poll_s` and at once after `wake()`. Fork-safe: a forked child starts its own."""

    def __init__(self, deliver: Callable[[], int], poll_s: float = POLL_S) -> None:
        self._deliver = deliver
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()

    def start(self) -> None:
        """Start this process's thread (Gunicorn post_worker_init; `wake` starts it too)."""
        with self._lock:
            if self.running():
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name="cms-courier", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """A call has queued mail: look at the outbox now (the undo window decides when it
        leaves), starting the thread in a process that has none yet."""
        self.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while self._deliver():  # a full batch may leave more that is due
                    if self._stop.is_set():
                        return
            except Exception:
                logger.exception("outbox courier round failed")


def for_app(app: "Flask") -> Courier | None:
    """The app's courier over its database and relay settings; None without a relay."""
    from sqlalchemy.orm import Session

    from cms.extensions import db
    from cms.plugins.mail import deliver_due

    settings = app.config["CMS_SETTINGS"]
    if not settings.smtp_url:
        return None

    def deliver() -> int:
        with app.app_context(), Session(db.engine) as session:
            return deliver_due(session, settings.smtp_url, settings.mail_from)

    return Courier(deliver)
