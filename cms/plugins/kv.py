"""Plugin key-value storage in the SQL database, with quotas, always inside one agency."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import and_, event, or_, select
from sqlalchemy.orm import Session

from cms.models import PluginValue

SCOPES = ("plugin", "agent", "client")
MAX_KEY = 128
MAX_VALUE_BYTES = 16 * 1024
MAX_KEYS = 256
MAX_TOTAL_BYTES = 256 * 1024


class KvRefused(Exception):
    """A kv request outside the rules; `code` is what the plugin is told."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def owner_of(scope: str, agency_id: int, user_id: int, client_id: int | None) -> int:
    """Whose value it is: the agency, the agent, or the open client. Raises KvRefused."""
    if scope == "plugin":
        return agency_id
    if scope == "agent":
        return user_id
    if scope == "client":
        if client_id is None:
            raise KvRefused("no_client", "scope client needs an open client")
        return client_id
    raise KvRefused("bad_args", f"scope must be one of {', '.join(SCOPES)}")


def check_key(key: Any) -> str:
    """The key, checked; raises KvRefused(bad_args)."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise KvRefused("bad_args", f"key must be a string of 1 to {MAX_KEY} characters")
    return key


def stored_size(key: str, value: Any) -> int:
    """What `value` under `key` counts against the quotas; raises KvRefused(too_large)."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) + len(key)
    if size > MAX_VALUE_BYTES:
        raise KvRefused("too_large", f"the value is {size} bytes; at most {MAX_VALUE_BYTES}")
    return size


def check_quota(scope: str, sizes: list[int], replaced: int | None, size: int) -> None:
    """Raise KvRefused(quota_exceeded) unless a value of `size` fits beside an owner's values of
    `sizes` (`replaced`: the size of the value it replaces, None for a new key)."""
    if replaced is None and len(sizes) >= MAX_KEYS:
        raise KvRefused("quota_exceeded", f"at most {MAX_KEYS} keys per {scope}")
    if sum(sizes) - (replaced or 0) + size > MAX_TOTAL_BYTES:
        raise KvRefused("quota_exceeded", f"at most {MAX_TOTAL_BYTES} bytes per {scope}")


def check_prefix(prefix: Any) -> str:
    """A kv.list prefix, checked; raises KvRefused(bad_args)."""
    if not isinstance(prefix, str) or len(prefix) > MAX_KEY:
        raise KvRefused("bad_args", "prefix must be a string")
    return prefix


# Reads of one transaction ------------------------------------------------------------------
#
# A page runs several plugin calls, each reading a few keys. The first kv op of a transaction
# loads every value of the owners its call can reach (the agency, the agent, the open client),
# for all plugins, in one statement; the calls of that transaction then read and check quotas
# from memory, and writes keep the cache in step. Any commit or rollback (a call's savepoint
# included) drops it, so it never outlives what the transaction saw.

Owner = tuple[str, int]  # (scope, owner id)
_CACHE = "cms.plugins.kv"


@dataclass
class _Cache:
    owners: set[Owner] = field(default_factory=set)
    rows: dict[tuple[str, str, int, str], PluginValue] = field(default_factory=dict)


def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_CACHE, None)


event.listen(Session, "after_commit", _forget)
event.listen(Session, "after_soft_rollback", _forget)


def _cache(session: Session, agency_id: int, scope: str, owner: int,
           reachable: Iterable[Owner]) -> _Cache:
    """This transaction's cache, with (scope, owner) and every `reachable` owner loaded."""
    cache: _Cache = session.info.setdefault(_CACHE, _Cache())
    missing = [o for o in dict.fromkeys([(scope, owner), *reachable]) if o not in cache.owners]
    if missing:
        rows = session.scalars(select(PluginValue).where(
            PluginValue.agency_id == agency_id,
            or_(*[and_(PluginValue.scope == s, PluginValue.owner_id == o) for s, o in missing])))
        for row in rows:
            cache.rows[(row.plugin_id, row.scope, row.owner_id, row.key)] = row
        cache.owners.update(missing)
    return cache


def _owned(cache: _Cache, plugin_id: str, scope: str, owner: int) -> list[PluginValue]:
    return [row for (p, s, o, _), row in cache.rows.items()
            if p == plugin_id and s == scope and o == owner]


def kv_get(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int, key: Any,
           reachable: Iterable[Owner] = ()) -> Any:
    """The stored value (None when unset). `reachable`: the other owners this call may read,
    loaded in the same statement."""
    key = check_key(key)
    row = _cache(session, agency_id, scope, owner, reachable).rows.get((plugin_id, scope, owner, key))
    return None if row is None else row.value


def kv_set(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int, key: Any,
           value: Any, reachable: Iterable[Owner] = ()) -> None:
    """Store `value`; raises KvRefused (too_large, quota_exceeded) with nothing written."""
    key = check_key(key)
    size = stored_size(key, value)
    cache = _cache(session, agency_id, scope, owner, reachable)
    row = cache.rows.get((plugin_id, scope, owner, key))
    owned = _owned(cache, plugin_id, scope, owner)
    check_quota(scope, [r.size for r in owned], row.size if row else None, size)
    if row is None:
        row = PluginValue(plugin_id=plugin_id, agency_id=agency_id, scope=scope, owner_id=owner,
                          key=key, value=value, size=size)
        session.add(row)
    else:
        row.value, row.size = value, size
    session.flush()
    cache.rows[(plugin_id, scope, owner, key)] = row


def kv_delete(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int, key: Any,
              reachable: Iterable[Owner] = ()) -> bool:
    key = check_key(key)
    cache = _cache(session, agency_id, scope, owner, reachable)
    row = cache.rows.pop((plugin_id, scope, owner, key), None)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def kv_list(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int,
            prefix: Any, reachable: Iterable[Owner] = ()) -> list[str]:
    prefix = check_prefix(prefix)
    cache = _cache(session, agency_id, scope, owner, reachable)
    return sorted(r.key for r in _owned(cache, plugin_id, scope, owner) if r.key.startswith(prefix))
