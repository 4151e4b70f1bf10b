"""Locust users for bench/incident_replay.py: travel agents working at a constant pace.

Run by the replay (`locust -f bench/replay/locustfile.py --headless ...`), never by hand against
anything but 127.0.0.1. Two kinds of agent:

- `DeskAgent`: logs in as the next of the seeded agents, searches clients, opens client pages
  (every one renders the softphone, mail and terminal panels), dials, mails and uses the
  terminal, and now and then logs out and logs in as the next agent: the stream of logins.
- `ArrivingAgent` (REPLAY_LOGIN_USERS of them): agents starting their shift at a steady rate,
  each logging in, opening the dashboard and logging out, whatever the other users are stuck on,
  so logins keep arriving during an outage as they would at a real agency.
- `PhoneAgent` (REPLAY_PHONE_USERS of them): a call-centre agent who stays logged in for the
  whole shift and works the phone (client page, dial, hang up, wrap up) at REPLAY_PHONE_PACE:
  the agents whose softphone history grows fastest.

Both wait with `constant_throughput`, so a slow answer does not slow the offered load down by
more than the answer itself. Every request, and every login attempt as a whole, is appended to
REPLAY_REQUEST_LOG (CSV: kind, start epoch s, ms, name, status, ok, error) for the analysis.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
import re
import time
from datetime import date, timedelta
from typing import Any

from locust import HttpUser, constant_throughput, events, task

PASSWORD = os.environ.get("REPLAY_PASSWORD", "demo-travel-2026")
AGENTS = int(os.environ.get("REPLAY_AGENTS", "12000"))
PACE = float(os.environ.get("REPLAY_PACE", "0.5"))
PHONE_PACE = float(os.environ.get("REPLAY_PHONE_PACE", "1.0"))
PHONE_USERS = int(os.environ.get("REPLAY_PHONE_USERS", "2"))
LOGIN_USERS = int(os.environ.get("REPLAY_LOGIN_USERS", "6"))
LOGIN_PACE = float(os.environ.get("REPLAY_LOGIN_PACE", "0.12"))
TIMEOUT = float(os.environ.get("REPLAY_TIMEOUT", "30"))
USER_AGENT = os.environ.get("REPLAY_USER_AGENT", "cms-replay-locust")
LOG_PATH = os.environ.get("REPLAY_REQUEST_LOG", "replay-requests.csv")
SEARCH_TERMS = ["mül", "gar", "smi", "jo", "sch", "ng", "pat", "fern", "kow", "dub", "maria",
                "lefe", "olivia.", "mar", "san", "ber"]
#: Where a plugin's answer is a working CMS saying no (fault, off, not granted, bad params): the
#: page or API answered; only 5xx other than a plugin fault (503), timeouts and resets are errors.
PLUGIN_ANSWERS = {200, 403, 404, 422, 503}

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
_CLIENT = re.compile(r'href="/clients/(\d+)"')
_BOOKING = re.compile(r'href="/bookings/(\d+)"')
# Every run starts at a random agent so consecutive runs do not reuse the same sessions.
_next_agent = itertools.count(random.randrange(AGENTS))
_phone_agent = itertools.count(1)

_log_file = open(LOG_PATH, "a", newline="", buffering=1)
_log = csv.writer(_log_file)


def record(kind: str, started: float, ms: float, name: str, status: int, ok: bool,
           error: str = "") -> None:
    _log.writerow([kind, f"{started:.4f}", f"{ms:.1f}", name, status, int(ok), error[:120]])


@events.request.add_listener
def _on_request(request_type: str, name: str, response_time: float, response: Any,
                exception: BaseException | None, start_time: float | None = None,
                **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    started = start_time if start_time is not None else time.time() - response_time / 1000
    record("http", started, response_time, f"{request_type} {name}", status, exception is None,
           "" if exception is None else type(exception).__name__ + ": " + str(exception))


@events.quitting.add_listener
def _close_log(**_: Any) -> None:
    _log_file.flush()


def _what(answer: Any) -> str:
    """The status, or why there was none (timeout, reset, refused)."""
    if answer.status_code:
        return str(answer.status_code)
    error = getattr(answer, "error", None)
    return f"no answer: {type(error).__name__ if error else 'unknown'}: {error}"[:120]


class Agent(HttpUser):
    """What both kinds of agent share: logging in, reading pages, calling plugin actions."""

    abstract = True
    host = "http://127.0.0.1:8000"

    def on_start(self) -> None:
        self.client.headers["User-Agent"] = USER_AGENT
        self.csrf = ""
        self.clients: list[int] = []
        self.bookings: dict[int, list[int]] = {}
        self.client_id: int | None = None
        self.logged_in = False
        self.log_in()

    # Logging in and out ------------------------------------------------------------------------

    def next_username(self) -> str:
        return f"agent{next(_next_agent) % AGENTS + 1:05d}"

    def log_in(self, username: str | None = None) -> bool:
        """One login attempt as an agent would make it (form, then post); recorded as a whole."""
        username = username or self.next_username()
        self.client.cookies.clear()
        started, problem = time.time(), ""
        with self.client.get("/login", name="/login (form)", timeout=TIMEOUT,
                             allow_redirects=False, catch_response=True) as form:
            token = _CSRF.search(form.text or "") if form.status_code == 200 else None
            if token is None:
                problem = f"login form: {_what(form)}"
                form.failure(problem)
        if token is not None:
            with self.client.post("/login", name="/login", timeout=TIMEOUT, allow_redirects=False,
                                  data={"csrf_token": token.group(1), "username": username,
                                        "password": PASSWORD}, catch_response=True) as answer:
                location = answer.headers.get("Location", "")
                if answer.status_code != 302 or "/login" in location:
                    problem = f"login: {_what(answer)}"
                    answer.failure(problem)
        self.logged_in = not problem
        record("login", started, (time.time() - started) * 1000, username,
               0 if problem else 302, self.logged_in, problem)
        if self.logged_in:
            self.page("/", "/ (dashboard)")
        return self.logged_in

    def log_out(self) -> None:
        if self.logged_in and self.csrf:
            self.client.post("/logout", name="/logout", data={"csrf_token": self.csrf},
                             allow_redirects=False, timeout=TIMEOUT)
        self.logged_in = False

    # Pages and actions ---------------------------------------------------------------------------

    def page(self, path: str, name: str) -> str:
        """GET a page; keep its CSRF token. Returns its HTML ('' when it failed)."""
        with self.client.get(path, name=name, timeout=TIMEOUT, catch_response=True,
                             allow_redirects=False) as answer:
            if answer.status_code != 200:
                answer.failure(_what(answer))
                if answer.status_code in (301, 302) and "/login" in answer.headers.get("Location", ""):
                    self.logged_in = False
                return ""
            html = answer.text or ""
        token = _CSRF.search(html)
        if token:
            self.csrf = token.group(1)
        return html

    def action(self, plugin: str, name: str, params: dict[str, Any]) -> int:
        """POST a plugin action through the JSON API; returns the status (0 on no answer)."""
        query = f"?client_id={self.client_id}" if self.client_id else ""
        with self.client.post(f"/api/plugins/{plugin}/actions/{name}{query}", json=params,
                              headers={"X-CSRFToken": self.csrf}, timeout=TIMEOUT,
                              name=f"/api/plugins/{plugin}/actions/{name}",
                              catch_response=True) as answer:
            if answer.status_code not in PLUGIN_ANSWERS:
                answer.failure(_what(answer))
            return int(answer.status_code or 0)

    def ensure_logged_in(self) -> bool:
        return self.logged_in or self.log_in()

    def search(self) -> None:
        html = self.page(f"/clients?q={random.choice(SEARCH_TERMS)}", "/clients?q=")
        found = [int(n) for n in _CLIENT.findall(html)]
        if found:
            self.clients = found[:20]

    def open_client(self) -> None:
        if not self.clients:
            self.search()
        if not self.clients:
            return
        self.client_id = random.choice(self.clients)
        html = self.page(f"/clients/{self.client_id}", "/clients/<id>")
        self.bookings[self.client_id] = [int(n) for n in _BOOKING.findall(html)][:5]

    def phone_call(self) -> None:
        if self.client_id is None:
            self.open_client()
        number = f"+44 20 7946 {random.randrange(10_000):04d}"
        params: dict[str, Any] = {"number": number}
        if self.client_id:
            params["client_id"] = self.client_id
        self.action("softphone", "dial", params)
        self.action("softphone", "hangup", {})
        wrap = {"disposition": random.choice(["booked", "quote_sent", "callback", "no_answer"]),
                "number": number, "duration_s": random.randrange(20, 600)}
        if self.client_id:
            wrap["client_id"] = self.client_id
        self.action("softphone", "wrap_up", wrap)


class DeskAgent(Agent):
    """Searches, client pages with their plugin panels, mail, terminal, calls; logs out and in."""

    weight = 10
    wait_time = constant_throughput(PACE)

    @task(3)
    def search_clients(self) -> None:
        if self.ensure_logged_in():
            self.search()

    @task(4)
    def client_page(self) -> None:
        if self.ensure_logged_in():
            self.open_client()

    @task(2)
    def call_client(self) -> None:
        if self.ensure_logged_in():
            self.phone_call()

    @task(1)
    def mail_client(self) -> None:
        if not self.ensure_logged_in():
            return
        if self.client_id is None:
            self.open_client()
        self.action("mail", "compose", {})
        bookings = self.bookings.get(self.client_id or 0) or []
        if bookings:
            self.action("mail", "preview", {"template": "confirmation", "to": "client@example.com",
                                            "booking_id": random.choice(bookings)})

    @task(1)
    def terminal(self) -> None:
        if not self.ensure_logged_in():
            return
        day = date.today() + timedelta(days=random.randrange(5, 40))
        self.action("terminal", "command",
                    {"command": f"AN{day.day:02d}{day.strftime('%b').upper()}"
                                f"{random.choice(['JFKLHR', 'LHRCDG', 'FRAJFK', 'CDGMAD'])}"})

    @task(1)
    def dashboard(self) -> None:
        if self.ensure_logged_in():
            self.page("/", "/ (dashboard)")

    @task(1)
    def next_agent(self) -> None:
        """The agent leaves; the next one at the desk logs in."""
        self.log_out()
        self.log_in()


class ArrivingAgent(Agent):
    """Agents arriving for their shift: log in, look at the dashboard, log out."""

    fixed_count = LOGIN_USERS
    wait_time = constant_throughput(LOGIN_PACE)

    def on_start(self) -> None:
        self.client.headers["User-Agent"] = USER_AGENT
        self.csrf, self.clients, self.bookings = "", [], {}
        self.client_id, self.logged_in = None, False

    @task
    def arrive(self) -> None:
        if self.log_in():
            self.log_out()


class PhoneAgent(Agent):
    """A call-centre agent who stays logged in and works the phone."""

    fixed_count = PHONE_USERS
    wait_time = constant_throughput(PHONE_PACE)

    def next_username(self) -> str:
        # One of the last agents of the seed each, kept all shift, so their histories grow.
        if not hasattr(self, "username"):
            self.username = f"agent{AGENTS - (next(_phone_agent) - 1) % max(PHONE_USERS, 1):05d}"
        return self.username

    @task(1)
    def client_page(self) -> None:
        if self.ensure_logged_in():
            self.open_client()

    @task(3)
    def call(self) -> None:
        if self.ensure_logged_in():
            self.phone_call()
