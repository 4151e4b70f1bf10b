"""Plugin key-value storage in the SQL database, with quotas, always inside one agency."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
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


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise KvRefused("bad_args", f"key must be a string of 1 to {MAX_KEY} characters")
    return key


def _row(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int,
         key: str) -> PluginValue | None:
    return session.scalar(select(PluginValue).where(
        PluginValue.plugin_id == plugin_id, PluginValue.agency_id == agency_id,
        PluginValue.scope == scope, PluginValue.owner_id == owner, PluginValue.key == key))


def kv_get(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int, key: Any) -> Any:
    row = _row(session, plugin_id, agency_id, scope, owner, _key(key))
    return None if row is None else row.value


def kv_set(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int, key: Any,
           value: Any) -> None:
    """Store `value`; raises KvRefused (too_large, quota_exceeded) with nothing written."""
    key = _key(key)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) + len(key)
    if size > MAX_VALUE_BYTES:
        raise KvRefused("too_large", f"the value is {size} bytes; at most {MAX_VALUE_BYTES}")
    row = _row(session, plugin_id, agency_id, scope, owner, key)
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(PluginValue.size), 0)).where(
            PluginValue.plugin_id == plugin_id, PluginValue.agency_id == agency_id,
            PluginValue.scope == scope, PluginValue.owner_id == owner)).one()
    if row is None and count >= MAX_KEYS:
        raise KvRefused("quota_exceeded", f"at most {MAX_KEYS} keys per {scope}")
    if total - (row.size if row else 0) + size > MAX_TOTAL_BYTES:
        raise KvRefused("quota_exceeded", f"at most {MAX_TOTAL_BYTES} bytes per {scope}")
    if row is None:
        session.add(PluginValue(plugin_id=plugin_id, agency_id=agency_id, scope=scope,
                                owner_id=owner, key=key, value=value, size=size))
    else:
        row.value, row.size = value, size
    session.flush()


def kv_delete(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int, key: Any) -> bool:
    row = _row(session, plugin_id, agency_id, scope, owner, _key(key))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def kv_list(session: Session, plugin_id: str, agency_id: int, scope: str, owner: int,
            prefix: Any) -> list[str]:
    if not isinstance(prefix, str) or len(prefix) > MAX_KEY:
        raise KvRefused("bad_args", "prefix must be a string")
    keys = session.scalars(select(PluginValue.key).where(
        PluginValue.plugin_id == plugin_id, PluginValue.agency_id == agency_id,
        PluginValue.scope == scope, PluginValue.owner_id == owner).order_by(PluginValue.key))
    return [k for k in keys if k.startswith(prefix)]
