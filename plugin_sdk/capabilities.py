"""Capabilities a plugin may request, and the `cms.call` ops each one unlocks. Defined once.

The manifest lists capabilities; an admin grants them; the host registers one op handler per op
below (`cms.runtime.HostOp(name, capability, ...)`). `log` is the `cms.log` import, not an op.
The `abort` op (`abi.ABORT_OP`) needs no capability.
"""

from __future__ import annotations

from typing import Mapping

#: Capability name -> what it allows, as shown to admins when they grant it.
CAPABILITIES: Mapping[str, str] = {
    "log": "write lines into the plugin's log (cms.log)",
    "kv": "keep small values in per-plugin storage, per agent or per client",
    "clients.read": "read clients of the calling agent's agency",
    "bookings.read": "read bookings of the calling agent's agency",
    "bookings.write": "create, change and cancel bookings in the calling agent's agency",
    "activity.write": "add entries to a client's activity timeline",
    "mail.send": "send e-mail through the CMS mail relay",
    "inventory.search": "search flight inventory",
    "http": "fetch from the hosts in the manifest's http allow-list",
}

#: Op name -> the capability it needs.
OPS: Mapping[str, str] = {
    "kv.get": "kv",
    "kv.set": "kv",
    "kv.delete": "kv",
    "kv.list": "kv",
    "clients.get": "clients.read",
    "clients.search": "clients.read",
    "bookings.get": "bookings.read",
    "bookings.list": "bookings.read",
    "bookings.create": "bookings.write",
    "bookings.update": "bookings.write",
    "bookings.cancel": "bookings.write",
    "activity.add": "activity.write",
    "mail.send": "mail.send",
    "inventory.search": "inventory.search",
    "http.get": "http",
}


def capability_of(op: str) -> str | None:
    """The capability an op needs, or None for an op the host does not offer."""
    return OPS.get(op)
