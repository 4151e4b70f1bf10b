"""The host ops behind `cms.call`, one per capability op (plugin_sdk.capabilities.OPS).

Handlers are Flask-free: they read the `HostContext` the plugin service puts into the call's
context (the agent, agency, open client and the database session) and always stay inside the
calling agent's agency. Writes are flushed, never committed: the first write op of a call opens
its savepoint (`HostContext.begin_write`; a call that only reads opens none), and the service
keeps the call's writes only when the plugin answers ok, so a fault leaves nothing half-written.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy import inspect
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value

from cms import monitoring
from cms.audit import Actor
from cms.bookings import service as bookings
from cms.bookings.rules import BookingInput, PassengerInput, SegmentInput
from cms.clients.search import search_statement
from cms.clients.service import get_client
from cms.errors import Conflict, DomainError, NotFound, ValidationFailed
from cms.ids import MAX_ID, is_id
from cms.models import Activity, ActivityKind, Booking, Client, Passenger, Segment
from cms.plugins import inventory, kv, mail
from cms.runtime import CallContext, HostOp, HostOpError, HostOps
from plugin_sdk.capabilities import OPS

HTTP_MAX_BYTES = 64 * 1024
HTTP_TIMEOUT_MS = 2_000
MAIL_KINDS = {"call": ActivityKind.CALL, "mail": ActivityKind.MAIL, "note": ActivityKind.NOTE}


@dataclass
class HostContext:
    """Who a plugin call acts for, as the host knows it (never taken from the plugin)."""

    session: Session
    plugin_id: str
    agency_id: int
    actor: Actor
    client_id: int | None = None
    http_allow: tuple[str, ...] = ()
    #: Outbox mails queued by this call; the courier delivers them after their undo window.
    queued_mail: list[int] = field(default_factory=list)
    #: How long this call's mail waits in the outbox for its sender's undo.
    mail_undo_s: int | None = 0
    #: The call's savepoint, opened by its first write op (None: the call wrote nothing).
    savepoint: SessionTransaction | None = None
    #: The page's client when the call has none: its storage is prefetched, never reachable.
    page_client_id: int | None = None

    def kv_owners(self) -> list[tuple[str, int]]:
        """The kv owners to load with this call's first kv op: its agency, its agent and the
        open client (or the page's, which later panels of the page reach)."""
        owners = [("plugin", self.agency_id), ("agent", self.user_id)]
        client_id = self.client_id if self.client_id is not None else self.page_client_id
        return owners + ([("client", client_id)] if client_id is not None else [])

    def begin_write(self) -> None:
        """Open the call's savepoint before its first write (idempotent)."""
        if self.savepoint is None:
            self.savepoint = self.session.begin_nested()

    def end(self, keep: bool) -> bool:
        """Release the savepoint, keeping its writes or not; True when there were writes."""
        savepoint, self.savepoint = self.savepoint, None
        if savepoint is None:
            return False
        if keep:
            savepoint.commit()
        else:
            savepoint.rollback()
        return True

    @property
    def user_id(self) -> int:
        assert self.actor.user_id is not None
        return self.actor.user_id


def host_of(call: CallContext) -> HostContext:
    host = call.context.get("host")
    if not isinstance(host, HostContext):
        raise HostOpError("unavailable", "this op needs the CMS (it is not available here)")
    return host


def _int_arg(args: dict[str, Any], name: str) -> int:
    value = args.get(name)
    if not is_id(value):
        raise HostOpError("bad_args", f"{name} must be a record id (1 to {MAX_ID})")
    return int(value)


def _str_arg(args: dict[str, Any], name: str, max_len: int = 200, default: str | None = None) -> str:
    value = args.get(name, default)
    if not isinstance(value, str) or len(value) > max_len:
        raise HostOpError("bad_args", f"{name} must be a string of at most {max_len} characters")
    return value


def _domain(exc: DomainError) -> HostOpError:
    if isinstance(exc, ValidationFailed) and exc.fields:
        first = next(iter(exc.fields.items()))
        return HostOpError("invalid", f"{exc.message} {first[0]}: {first[1][0]}")
    code = {NotFound: "not_found", Conflict: "conflict"}.get(type(exc), exc.code)
    return HostOpError(code, exc.message)


# kv ---------------------------------------------------------------------------------------------

def _kv(op: str) -> Callable[[CallContext, dict[str, Any]], Any]:
    def handle(call: CallContext, args: dict[str, Any]) -> Any:
        host = host_of(call)
        scope = args.get("scope", "agent")
        try:
            owner = kv.owner_of(scope, host.agency_id, host.user_id, host.client_id)
            where = (host.session, host.plugin_id, host.agency_id, scope, owner)
            reach = host.kv_owners()
            if op == "kv.get":
                return {"value": kv.kv_get(*where, args.get("key"), reachable=reach)}
            if op == "kv.set":
                kv.kv_set(*where, args.get("key"), args.get("value"), reachable=reach)
                return {"ok": True}
            if op == "kv.delete":
                return {"deleted": kv.kv_delete(*where, args.get("key"), reachable=reach)}
            return {"keys": kv.kv_list(*where, args.get("prefix", ""), reachable=reach)}
        except kv.KvRefused as exc:
            raise HostOpError(exc.code, exc.message) from None
    return handle


# clients ------------------------------------------------------------------------------------------

def _client_view(client: Client) -> dict[str, Any]:
    return {"id": client.id, "name": client.full_name, "first_name": client.first_name,
            "last_name": client.last_name, "email": client.email, "phone": client.phone}


def clients_get(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    try:
        return _client_view(get_client(host.session, host.agency_id, _int_arg(args, "id")))
    except DomainError as exc:
        raise _domain(exc) from None


def clients_search(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    query = _str_arg(args, "q", 100, "")
    limit = _limit(args)
    stmt = search_statement(host.agency_id, query)
    clients = list(host.session.scalars(stmt.limit(limit))) if stmt is not None else []
    return {"items": [{k: v for k, v in _client_view(c).items()
                       if k in ("id", "name", "email", "phone")} for c in clients]}


# bookings -----------------------------------------------------------------------------------------

def booking_view(booking: Booking) -> dict[str, Any]:
    return {
        "id": booking.id, "locator": booking.record_locator, "status": booking.status,
        "client_id": booking.client_id, "client_name": booking.client.full_name,
        "currency": booking.currency, "notes": booking.notes, "version": booking.version,
        "passengers": [{"first_name": p.first_name, "last_name": p.last_name,
                        "pax_type": p.pax_type} for p in booking.passengers],
        "segments": [{"carrier": s.carrier, "flight_number": s.flight_number, "origin": s.origin,
                      "destination": s.destination, "date": s.departure_date.isoformat(),
                      "cabin": s.cabin, "fare": float(s.fare)} for s in booking.segments],
    }


def _find_booking(host: HostContext, args: dict[str, Any]) -> Booking:
    if "locator" in args:
        locator = _str_arg(args, "locator", 6).upper()
        booking_id = host.session.scalar(select(Booking.id).where(
            Booking.record_locator == locator, Booking.agency_id == host.agency_id))
        if booking_id is None:
            raise HostOpError("not_found", f"no booking {locator}")
    else:
        booking_id = _int_arg(args, "id")
    try:
        return bookings.get_booking(host.session, host.agency_id, booking_id)
    except DomainError as exc:
        raise _domain(exc) from None


def bookings_get(call: CallContext, args: dict[str, Any]) -> Any:
    return booking_view(_find_booking(host_of(call), args))


def _load_segments(session: Session, rows: list[Booking]) -> None:
    """Segments of the bookings that do not have them loaded yet (a client page's own list
    has), in one statement."""
    missing = {b.id: b for b in rows if "segments" not in inspect(b).dict}
    if not missing:
        return
    found: dict[int, list[Segment]] = {booking_id: [] for booking_id in missing}
    for segment in session.scalars(select(Segment).where(Segment.booking_id.in_(missing))
                                   .order_by(Segment.booking_id, Segment.position)):
        found[segment.booking_id].append(segment)
    for booking_id, segments in found.items():
        set_committed_value(missing[booking_id], "segments", segments)


def _limit(args: dict[str, Any], default: int = 10, most: int = 20) -> int:
    value = args.get("limit", default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise HostOpError("bad_args", f"limit must be a whole number from 1 to {most}")
    return min(max(value, 1), most)


def bookings_list(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    client_id = _int_arg(args, "client_id")
    # The page's own client is in the identity map: checking it costs no query.
    client = host.session.get(Client, client_id)
    if client is None or client.agency_id != host.agency_id:
        raise HostOpError("not_found", f"no client {client_id}")
    limit = _limit(args)
    # Passengers are counted in the same statement (a client page has the bookings themselves
    # loaded already, so their rows cost nothing more), segments only where not loaded.
    passengers = (select(func.count(Passenger.id)).where(Passenger.booking_id == Booking.id)
                  .correlate(Booking).scalar_subquery())
    found = host.session.execute(select(Booking, passengers).where(
        Booking.client_id == client_id, Booking.agency_id == host.agency_id,
    ).order_by(Booking.created_at.desc(), Booking.id.desc()).limit(limit)).all()
    rows = [booking for booking, _ in found]
    _load_segments(host.session, rows)
    return {"items": [{"id": b.id, "locator": b.record_locator, "status": b.status,
                       "summary": bookings.trip_summary(b, count),
                       "created_at": b.created_at.isoformat()}
                      for b, count in found]}


def _booking_input(args: dict[str, Any], base: Booking | None = None) -> BookingInput:
    try:
        passengers = [PassengerInput(str(p["first_name"]), str(p["last_name"]),
                                     str(p.get("pax_type", "ADT")))
                      for p in args.get("passengers", [])] if "passengers" in args or base is None else [
            PassengerInput(p.first_name, p.last_name, p.pax_type) for p in base.passengers]
        segments = [SegmentInput(str(s["carrier"]), str(s["flight_number"]), str(s["origin"]),
                                 str(s["destination"]), date.fromisoformat(str(s["date"])),
                                 str(s.get("cabin", "Y")), Decimal(str(s.get("fare", 0))).quantize(Decimal("0.01")))
                    for s in args.get("segments", [])] if "segments" in args or base is None else [
            SegmentInput(s.carrier, s.flight_number, s.origin, s.destination, s.departure_date,
                         s.cabin, s.fare) for s in base.segments]
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        raise HostOpError("invalid", f"passengers and segments need every field ({exc})") from None
    notes = args.get("notes", base.notes if base else "")
    currency = args.get("currency", base.currency if base else "EUR")
    if not isinstance(notes, str) or not isinstance(currency, str):
        raise HostOpError("invalid", "notes and currency must be strings")
    return BookingInput(passengers, segments, currency, notes)


def bookings_create(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    status = args.get("status", "held")
    if status not in ("quoted", "held", "confirmed"):
        raise HostOpError("invalid", "status must be quoted, held or confirmed")
    try:
        booking = bookings.create_booking(host.session, host.actor, _int_arg(args, "client_id"),
                                          _booking_input(args), status, commit=False)
    except DomainError as exc:
        raise _domain(exc) from None
    return booking_view(booking)


def bookings_update(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    booking = _find_booking(host, args)
    try:
        booking = bookings.update_booking(host.session, host.actor, booking.id,
                                          _booking_input(args, booking),
                                          _int_arg(args, "version"), commit=False)
    except DomainError as exc:
        raise _domain(exc) from None
    return booking_view(booking)


def bookings_cancel(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    booking = _find_booking(host, args)
    try:
        booking = bookings.change_status(host.session, host.actor, booking.id, "cancel", commit=False)
    except DomainError as exc:
        raise _domain(exc) from None
    return booking_view(booking)


# activity, mail, inventory, http --------------------------------------------------------------

def activity_add(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    kind = MAIL_KINDS.get(str(args.get("kind")))
    if kind is None:
        raise HostOpError("bad_args", "kind must be call, mail or note")
    text = _str_arg(args, "text", 2000)
    if not text.strip():
        raise HostOpError("bad_args", "text must not be empty")
    data = args.get("data", {})
    if not isinstance(data, dict):
        raise HostOpError("bad_args", "data must be an object")
    try:
        client = get_client(host.session, host.agency_id, _int_arg(args, "client_id"))
    except DomainError as exc:
        raise _domain(exc) from None
    _check_record_ids(host, data, "data", {"client_id": client.id})
    entry = Activity(agency_id=host.agency_id, client_id=client.id, user_id=host.user_id,
                     kind=kind.value, body=text, data={**data, "plugin": host.plugin_id})
    host.session.add(entry)
    host.session.flush()
    return {"id": entry.id}


#: Keys that name a record wherever a plugin passes them (op args, activity data): each must
#: resolve inside the calling agent's agency, so no foreign id is ever stored.
RECORD_KEYS = {"client_id": Client, "booking_id": Booking}


def _check_record_ids(host: HostContext, values: dict[str, Any], where: str,
                      known: dict[str, int] | None = None) -> None:
    """Raise HostOpError(not_found) unless every record id among `values` (RECORD_KEYS, at the
    top level) names a record of the agent's agency; bad_args when one is not an id. Ids in
    `known` were resolved already (no query for them)."""
    for key, model in RECORD_KEYS.items():
        if values.get(key) is None or (known or {}).get(key) == values[key]:
            continue
        if not is_id(values[key]):
            raise HostOpError("bad_args", f"{where}.{key} must be a record id (1 to {MAX_ID})")
        found = host.session.scalar(select(model.id).where(
            model.id == values[key], model.agency_id == host.agency_id))
        if found is None:
            raise HostOpError("not_found", f"{where}.{key}: no {key[:-3]} {values[key]} here")


def mail_send(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    client_id = args.get("client_id")
    if client_id is not None:
        try:
            client_id = get_client(host.session, host.agency_id, _int_arg(args, "client_id")).id
        except DomainError as exc:
            raise _domain(exc) from None
    try:
        queued = mail.queue_mail(host.session, agency_id=host.agency_id, user_id=host.user_id,
                                 client_id=client_id, plugin_id=host.plugin_id,
                                 to=args.get("to"), subject=args.get("subject"),
                                 body=args.get("body"), undo_s=host.mail_undo_s)
    except mail.MailRefused as exc:
        raise HostOpError(exc.code, exc.message) from None
    host.queued_mail.append(queued.id)
    return {"id": queued.id, "status": "queued"}


def inventory_search(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    origin, destination = (_str_arg(args, k, 3).upper() for k in ("origin", "destination"))
    if len(origin) != 3 or len(destination) != 3 or not (origin + destination).isalpha():
        raise HostOpError("bad_args", "origin and destination are 3-letter airport codes")
    try:
        day = date.fromisoformat(_str_arg(args, "date", 10))
    except ValueError:
        raise HostOpError("bad_args", "date must be YYYY-MM-DD") from None
    cabin = args.get("cabin")
    if cabin is not None and cabin not in inventory.CABINS:
        raise HostOpError("bad_args", f"cabin must be one of {', '.join(inventory.CABINS)}")
    return {"flights": inventory.search_flights(host.session, origin, destination, day, cabin)}


def http_get(call: CallContext, args: dict[str, Any]) -> Any:
    host = host_of(call)
    url = _str_arg(args, "url", 2000)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HostOpError("bad_args", "url must be an http or https URL")
    if parts.hostname not in host.http_allow:
        raise HostOpError("host_not_allowed", f"{parts.hostname} is not in this plugin's http allow-list")

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a: Any, **k: Any) -> None:  # never leave the allow-list
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers={"User-Agent": "cms-plugin-host"}),
                         timeout=HTTP_TIMEOUT_MS / 1000) as response:
            body = response.read(HTTP_MAX_BYTES + 1)
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(HTTP_MAX_BYTES + 1), exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise HostOpError("unavailable", f"{parts.hostname}: {getattr(exc, 'reason', exc)}") from None
    if len(body) > HTTP_MAX_BYTES:
        raise HostOpError("too_large", f"the response is over {HTTP_MAX_BYTES} bytes")
    return {"status": status, "body": body.decode("utf-8", errors="replace")}


Handler = Callable[[CallContext, dict[str, Any]], Any]

#: The ops that change data: each opens the call's savepoint first.
WRITE_OPS = frozenset({"kv.set", "kv.delete", "bookings.create", "bookings.update",
                       "bookings.cancel", "activity.add", "mail.send"})


def _writing(handler: Handler) -> Handler:
    def handle(call: CallContext, args: dict[str, Any]) -> Any:
        host_of(call).begin_write()
        return handler(call, args)
    return handle


_READS_AND_WRITES: dict[str, Handler] = {
    **{op: _kv(op) for op in ("kv.get", "kv.set", "kv.delete", "kv.list")},
    "clients.get": clients_get, "clients.search": clients_search,
    "bookings.get": bookings_get, "bookings.list": bookings_list,
    "bookings.create": bookings_create, "bookings.update": bookings_update,
    "bookings.cancel": bookings_cancel, "activity.add": activity_add, "mail.send": mail_send,
    "inventory.search": inventory_search, "http.get": http_get,
}
HANDLERS: dict[str, Handler] = {op: _writing(h) if op in WRITE_OPS else h
                                for op, h in _READS_AND_WRITES.items()}


def _count_host_call(capability: str, outcome: str, call: CallContext) -> None:
    """Metrics for agents' calls only (the upload check's soak answers from canned vectors)."""
    if "host" in call.context:
        monitoring.host_call(capability, outcome, call.plugin_id, call.version)


def host_ops() -> HostOps:
    """Every op of plugin_sdk.capabilities, with its handler. Database ops run inline (the
    session belongs to the request's thread); the network op runs on a helper thread."""
    assert set(HANDLERS) == set(OPS), "every op in plugin_sdk.capabilities needs a handler"
    return HostOps(observe=_count_host_call, ops=[HostOp(name, OPS[name], HANDLERS[name],
                           timeout_ms=HTTP_TIMEOUT_MS + 500 if name == "http.get" else 1_000,
                           blocking=name == "http.get")
                    for name in sorted(HANDLERS)])
