"""The dev server's host ops: the server's op table (names, capabilities, timeouts) answered
from memory, with the server's own argument checks, quotas and error codes.

A `World` holds the fake agency (agent, clients, bookings) and what calls wrote (kv, outbox,
activity). Writes of a call are kept only when the plugin answers ok, as on the server.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field, replace
from functools import partial
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping, cast

from sqlalchemy.orm import Session

from cms.audit import Actor
from cms.bookings.rules import ALLOWED_TRANSITIONS, booking_problems
from cms.bookings.service import INVALID_MESSAGE, STALE_MESSAGE, trip_summary
from cms.ids import MAX_ID, is_id
from cms.models import Booking, BookingStatus, Client, OutboxMail, Passenger, Segment
from cms.plugins import hostops, inventory, kv, mail
from cms.runtime import CallContext, HostOpError, HostOps

#: The fake agency a preview acts in; `--context FILE.json` replaces any top-level key.
DEFAULT_WORLD: Mapping[str, Any] = {
    "agent": {"id": 7, "username": "dev.agent", "name": "Dana Agent", "agency_id": 1},
    "client_id": 12,
    "clients": [
        {"id": 12, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
         "phone": "+44 20 7946 0000"},
        {"id": 13, "first_name": "Alan", "last_name": "Turing", "email": "alan@example.com",
         "phone": None},
    ],
    "bookings": [
        {"id": 101, "locator": "QX7K2P", "client_id": 12, "status": "confirmed", "currency": "EUR",
         "notes": "", "version": 1, "created_at": "2026-11-20T09:30:00",
         "passengers": [{"first_name": "Ada", "last_name": "Lovelace", "pax_type": "ADT"}],
         "segments": [{"carrier": "BA", "flight_number": "117", "origin": "LHR",
                       "destination": "JFK", "date": "2027-01-12", "cabin": "Y", "fare": 420.0}]},
    ],
}
WORLD_KEYS = frozenset(DEFAULT_WORLD)
ARG_SUMMARY_CHARS = 120


class WorldError(ValueError):
    """A --context file that does not describe a world; `str()` is one line."""


@dataclass
class HostCall:
    """One host op of a call, as the dev panel shows it."""

    op: str
    args: str
    outcome: str
    ms: float


@dataclass
class CallRecord:
    """What one plugin call did with the host (the dev panel's list)."""

    client_id: int | None
    calls: list[HostCall] = field(default_factory=list)
    #: The plugin's cms.log lines, "level: text".
    logs: list[str] = field(default_factory=list)


def summary(args: Mapping[str, Any]) -> str:
    """The op's args as one short line of JSON."""
    text = json.dumps(args, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= ARG_SUMMARY_CHARS else text[:ARG_SUMMARY_CHARS - 1] + "…"


class World:
    """The fake agency and everything calls stored, in memory."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        unknown = set(overrides or {}) - WORLD_KEYS
        if unknown:
            raise WorldError(f"unknown key {sorted(unknown)[0]!r}; expected some of "
                             f"{', '.join(sorted(WORLD_KEYS))}")
        data = {**copy.deepcopy(dict(DEFAULT_WORLD)), **copy.deepcopy(dict(overrides or {}))}
        agent = data["agent"]
        if not isinstance(agent, dict) or not all(isinstance(agent.get(k), int) for k in ("id", "agency_id")):
            raise WorldError("agent must be an object with integer id and agency_id")
        if not isinstance(data["clients"], list) or not isinstance(data["bookings"], list):
            raise WorldError("clients and bookings must be lists")
        self.agent: dict[str, Any] = agent
        self.client_id: int | None = data["client_id"]
        self.clients: dict[int, dict[str, Any]] = {}
        for client in data["clients"]:
            if not isinstance(client, dict) or not isinstance(client.get("id"), int):
                raise WorldError("every client needs an integer id")
            self.clients[client["id"]] = client
        if self.client_id is not None and self.client_id not in self.clients:
            raise WorldError(f"client_id {self.client_id} is not among clients")
        self.state: dict[str, Any] = {"bookings": {}, "kv": {}, "outbox": [], "activity": []}
        for booking in data["bookings"]:
            if not isinstance(booking, dict) or not isinstance(booking.get("id"), int):
                raise WorldError("every booking needs an integer id")
            self.state["bookings"][booking["id"]] = booking

    @property
    def agency_id(self) -> int:
        return int(self.agent["agency_id"])

    def client_context(self, client_id: int | None) -> dict[str, Any] | None:
        """The context's `client` object, as the server builds it."""
        client = self.clients.get(client_id) if client_id is not None else None
        if client is None:
            return None
        return {"id": client["id"], "name": f"{client['first_name']} {client['last_name']}",
                "phone": client.get("phone"), "email": client.get("email")}

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.state)

    def restore(self, saved: dict[str, Any]) -> None:
        self.state = saved


def _client_model(client: Mapping[str, Any], agency_id: int) -> Client:
    return Client(id=client["id"], agency_id=agency_id, first_name=client["first_name"],
                  last_name=client["last_name"], email=client.get("email"),
                  phone=client.get("phone"))


class DevHost:
    """Host op handlers over a World; `ops()` is the server's op table with these handlers."""

    def __init__(self, world: World, plugin_id: str, http_allow: tuple[str, ...]) -> None:
        self.world = world
        self.plugin_id = plugin_id
        self.http_allow = http_allow
        self._flights: dict[date, list[dict[str, Any]]] = {}

    def ops(self) -> HostOps:
        """The server's ops (hostops.host_ops: the same names, capabilities and timeouts),
        answered here, and each outcome recorded in the call's CallRecord."""
        real = hostops.host_ops()
        handlers: dict[str, Callable[[CallContext, dict[str, Any]], Any]] = {
            **{op: partial(self.kv, op) for op in ("kv.get", "kv.set", "kv.delete", "kv.list")},
            "clients.get": self.clients_get,
            "clients.search": self.clients_search, "bookings.get": self.bookings_get,
            "bookings.list": self.bookings_list, "bookings.create": self.bookings_create,
            "bookings.update": self.bookings_update, "bookings.cancel": self.bookings_cancel,
            "activity.add": self.activity_add, "mail.send": self.mail_send,
            "inventory.search": self.inventory_search, "http.get": self.http_get,
        }
        ops = []
        for name in real.names():
            op = real.get(name)
            assert op is not None
            ops.append(replace(op, handler=_recorded(name, handlers[name])))
        return HostOps(ops, observe=_observe_refusals)

    # kv -------------------------------------------------------------------------------------

    def kv(self, op: str, call: CallContext, args: dict[str, Any]) -> Any:
        scope = args.get("scope", "agent")
        record = _record(call)
        try:
            owner = kv.owner_of(scope, self.world.agency_id, int(self.world.agent["id"]),
                                record.client_id)
            values: dict[str, tuple[Any, int]] = self.world.state["kv"].setdefault(
                f"{scope}:{owner}", {})
            if op == "kv.list":
                prefix = kv.check_prefix(args.get("prefix", ""))
                return {"keys": sorted(k for k in values if k.startswith(prefix))}
            key = kv.check_key(args.get("key"))
            if op == "kv.get":
                found = values.get(key)
                return {"value": None if found is None else found[0]}
            if op == "kv.delete":
                return {"deleted": values.pop(key, None) is not None}
            value = args.get("value")
            size = kv.stored_size(key, value)
            old = values.get(key)
            kv.check_quota(scope, [s for _, s in values.values()], old[1] if old else None, size)
            values[key] = (copy.deepcopy(value), size)
            return {"ok": True}
        except kv.KvRefused as exc:
            raise HostOpError(exc.code, exc.message) from None

    # clients --------------------------------------------------------------------------------

    def _client(self, client_id: int) -> dict[str, Any]:
        client = self.world.clients.get(client_id)
        if client is None:
            raise HostOpError("not_found", "This client does not exist.")
        return client

    def clients_get(self, call: CallContext, args: dict[str, Any]) -> Any:
        client = self._client(hostops._int_arg(args, "id"))
        return hostops._client_view(_client_model(client, self.world.agency_id))

    def clients_search(self, call: CallContext, args: dict[str, Any]) -> Any:
        query = hostops._str_arg(args, "q", 100, "").strip().lower()
        limit = hostops._limit(args)
        found = [c for c in sorted(self.world.clients.values(),
                                   key=lambda c: (c["last_name"], c["first_name"], c["id"]))
                 if not query or any(query in str(c.get(k) or "").lower()
                                     for k in ("first_name", "last_name", "email", "phone"))]
        return {"items": [{"id": c["id"], "name": f"{c['first_name']} {c['last_name']}",
                           "email": c.get("email"), "phone": c.get("phone")}
                          for c in found[:limit]]}

    # bookings -------------------------------------------------------------------------------

    def _model(self, booking: Mapping[str, Any]) -> Booking:
        model = Booking(id=booking["id"], record_locator=booking["locator"],
                        status=booking["status"], client_id=booking["client_id"],
                        currency=booking.get("currency", "EUR"), notes=booking.get("notes", ""),
                        version=booking.get("version", 1), agency_id=self.world.agency_id)
        model.client = _client_model(self._client(booking["client_id"]), self.world.agency_id)
        model.passengers = [Passenger(first_name=p["first_name"], last_name=p["last_name"],
                                      pax_type=p.get("pax_type", "ADT"))
                            for p in booking.get("passengers", [])]
        model.segments = [Segment(carrier=s["carrier"], flight_number=s["flight_number"],
                                  origin=s["origin"], destination=s["destination"],
                                  departure_date=date.fromisoformat(s["date"]),
                                  cabin=s.get("cabin", "Y"), fare=s.get("fare", 0))
                          for s in booking.get("segments", [])]
        return model

    def _find(self, args: dict[str, Any]) -> dict[str, Any]:
        bookings: dict[int, dict[str, Any]] = self.world.state["bookings"]
        if "locator" in args:
            locator = hostops._str_arg(args, "locator", 6).upper()
            found = next((b for b in bookings.values() if b["locator"] == locator), None)
            if found is None:
                raise HostOpError("not_found", f"no booking {locator}")
            return found
        found = bookings.get(hostops._int_arg(args, "id"))
        if found is None:
            raise HostOpError("not_found", "This booking does not exist.")
        return found

    def bookings_get(self, call: CallContext, args: dict[str, Any]) -> Any:
        return hostops.booking_view(self._model(self._find(args)))

    def bookings_list(self, call: CallContext, args: dict[str, Any]) -> Any:
        client_id = hostops._int_arg(args, "client_id")
        if client_id not in self.world.clients:
            raise HostOpError("not_found", f"no client {client_id}")
        limit = hostops._limit(args)
        rows = sorted((b for b in self.world.state["bookings"].values()
                       if b["client_id"] == client_id),
                      key=lambda b: (b.get("created_at", ""), b["id"]), reverse=True)[:limit]
        return {"items": [{"id": b["id"], "locator": b["locator"], "status": b["status"],
                           "summary": trip_summary(self._model(b)),
                           "created_at": b.get("created_at", "")} for b in rows]}

    def _content(self, args: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
        """The booking's new content from the op's args, checked by the booking rules."""
        data = hostops._booking_input(args, self._model(base) if base else None)
        problems = booking_problems(data)
        if problems:
            first = next(iter(problems.items()))
            raise HostOpError("invalid", f"{INVALID_MESSAGE} {first[0]}: {first[1][0]}")
        return {"currency": data.currency, "notes": data.notes,
                "passengers": [{"first_name": p.first_name, "last_name": p.last_name,
                                "pax_type": p.pax_type} for p in data.passengers],
                "segments": [{"carrier": s.carrier, "flight_number": s.flight_number,
                              "origin": s.origin, "destination": s.destination,
                              "date": s.departure_date.isoformat(), "cabin": s.cabin,
                              "fare": float(s.fare)} for s in data.segments]}

    def bookings_create(self, call: CallContext, args: dict[str, Any]) -> Any:
        status = args.get("status", "held")
        if status not in ("quoted", "held", "confirmed"):
            raise HostOpError("invalid", "status must be quoted, held or confirmed")
        client_id = hostops._int_arg(args, "client_id")
        self._client(client_id)
        bookings: dict[int, dict[str, Any]] = self.world.state["bookings"]
        new_id = max(bookings, default=100) + 1
        booking = {"id": new_id, "locator": f"DEV{new_id % 1000:03d}", "client_id": client_id,
                   "status": status, "version": 1,
                   "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                   **self._content(args, None)}
        bookings[new_id] = booking
        return hostops.booking_view(self._model(booking))

    def bookings_update(self, call: CallContext, args: dict[str, Any]) -> Any:
        booking = self._find(args)
        if hostops._int_arg(args, "version") != booking.get("version", 1):
            raise HostOpError("conflict", STALE_MESSAGE)
        booking.update(self._content(args, booking))
        booking["version"] = booking.get("version", 1) + 1
        return hostops.booking_view(self._model(booking))

    def bookings_cancel(self, call: CallContext, args: dict[str, Any]) -> Any:
        booking = self._find(args)
        current = BookingStatus(booking["status"])
        if BookingStatus.CANCELLED not in ALLOWED_TRANSITIONS[current]:
            raise HostOpError("conflict", f"Booking {booking['locator']} is {current.value}; "
                              f"it cannot become {BookingStatus.CANCELLED.value}.")
        booking["status"] = BookingStatus.CANCELLED.value
        booking["version"] = booking.get("version", 1) + 1
        return hostops.booking_view(self._model(booking))

    # activity, mail, inventory, http --------------------------------------------------------

    def activity_add(self, call: CallContext, args: dict[str, Any]) -> Any:
        kind = hostops.MAIL_KINDS.get(str(args.get("kind")))
        if kind is None:
            raise HostOpError("bad_args", "kind must be call, mail or note")
        text = hostops._str_arg(args, "text", 2000)
        if not text.strip():
            raise HostOpError("bad_args", "text must not be empty")
        data = args.get("data", {})
        if not isinstance(data, dict):
            raise HostOpError("bad_args", "data must be an object")
        client_id = self._client(hostops._int_arg(args, "client_id"))["id"]
        for key, known in (("client_id", self.world.clients),
                           ("booking_id", self.world.state["bookings"])):
            if data.get(key) is None or (key == "client_id" and data[key] == client_id):
                continue
            if not is_id(data[key]):
                raise HostOpError("bad_args", f"data.{key} must be a record id (1 to {MAX_ID})")
            if data[key] not in known:
                raise HostOpError("not_found", f"data.{key}: no {key[:-3]} {data[key]} here")
        entries: list[dict[str, Any]] = self.world.state["activity"]
        entries.append({"id": len(entries) + 1, "client_id": client_id, "kind": kind.value,
                        "text": text, "data": {**data, "plugin": self.plugin_id}})
        return {"id": len(entries)}

    def mail_send(self, call: CallContext, args: dict[str, Any]) -> Any:
        client_id = args.get("client_id")
        if client_id is not None:
            client_id = self._client(hostops._int_arg(args, "client_id"))["id"]
        outbox = _Outbox(self.world.state["outbox"])
        try:  # the server's own checks; the outbox stands in for the session it adds to
            mail.queue_mail(cast(Session, outbox), agency_id=self.world.agency_id,
                            user_id=int(self.world.agent["id"]), client_id=client_id,
                            plugin_id=self.plugin_id, to=args.get("to"),
                            subject=args.get("subject"), body=args.get("body"))
        except mail.MailRefused as exc:
            raise HostOpError(exc.code, exc.message) from None
        return {"id": len(self.world.state["outbox"]), "status": "queued"}

    def inventory_search(self, call: CallContext, args: dict[str, Any]) -> Any:
        origin, destination = (hostops._str_arg(args, k, 3).upper() for k in ("origin", "destination"))
        if len(origin) != 3 or len(destination) != 3 or not (origin + destination).isalpha():
            raise HostOpError("bad_args", "origin and destination are 3-letter airport codes")
        try:
            day = date.fromisoformat(hostops._str_arg(args, "date", 10))
        except ValueError:
            raise HostOpError("bad_args", "date must be YYYY-MM-DD") from None
        cabin = args.get("cabin")
        if cabin is not None and cabin not in inventory.CABINS:
            raise HostOpError("bad_args", f"cabin must be one of {', '.join(inventory.CABINS)}")
        if day not in self._flights:  # the demo schedule `flask seed` loads, one day of it
            self._flights[day] = [
                {"carrier": f.carrier, "flight_number": f.flight_number, "origin": f.origin,
                 "destination": f.destination, "date": day.isoformat(), "departs": f.departs,
                 "arrives": f.arrives, "seats": dict(f.seats), "fares": dict(f.fares)}
                for f in inventory.demo_schedule(day, 1)]
        flights = sorted((f for f in self._flights[day]
                          if f["origin"] == origin and f["destination"] == destination),
                         key=lambda f: (f["departs"], f["carrier"]))
        if cabin:
            flights = [f for f in flights if f["seats"].get(cabin, 0) > 0]
        return {"flights": flights[:inventory.MAX_RESULTS]}

    def http_get(self, call: CallContext, args: dict[str, Any]) -> Any:
        """The server's own fetch (allow-list, no redirects, size cap): it reads only the
        allow-list of the host context."""
        host = hostops.HostContext(session=cast(Session, None), plugin_id=self.plugin_id,
                                   agency_id=self.world.agency_id, actor=Actor(
                                       int(self.world.agent["id"]), "dev", self.world.agency_id),
                                   http_allow=self.http_allow)
        return hostops.http_get(replace(call, context={"host": host}), args)


class _Outbox:
    """Stands in for the session `mail.queue_mail` adds its outbox row to."""

    def __init__(self, mails: list[dict[str, Any]]) -> None:
        self.mails = mails

    def add(self, row: OutboxMail) -> None:
        self.mails.append({"to": row.to_addr, "subject": row.subject, "body": row.body,
                           "client_id": row.client_id})

    def flush(self) -> None:
        return None


def _record(call: CallContext) -> CallRecord:
    record = call.context.get("dev")
    assert isinstance(record, CallRecord), "dev host ops run inside a dev server call"
    return record


def _recorded(name: str, handler: Callable[[CallContext, dict[str, Any]], Any]
              ) -> Callable[[CallContext, dict[str, Any]], Any]:
    """`handler` with its outcome (ok or the error code) recorded for the dev panel."""
    def handle(call: CallContext, args: dict[str, Any]) -> Any:
        record = _record(call)
        started = time.perf_counter()
        outcome = "ok"
        try:
            return handler(call, args)
        except HostOpError as exc:
            outcome = exc.code
            raise
        except Exception:
            outcome = "unavailable"
            raise
        finally:
            record.calls.append(HostCall(name, summary(args), outcome,
                                         round((time.perf_counter() - started) * 1000, 3)))
    return handle


def _observe_refusals(capability: str, outcome: str, call: CallContext) -> None:
    """Ops the host refused before any handler ran: not granted, or no such op."""
    if outcome in ("denied", "unknown_op"):
        record = call.context.get("dev")
        if isinstance(record, CallRecord):
            record.calls.append(HostCall(f"({capability})", "", outcome, 0.0))
