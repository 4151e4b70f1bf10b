"""Changing flags: validated, audited with before/after and a reason, and versioned.

The database is the source of truth. Every change bumps the single config version in the same
transaction; after the commit, `notify(version)` (the app's FlagStore) publishes it so every
worker reloads. Concurrent edits of one flag are serialized by `SELECT ... FOR UPDATE` where the
database has it, and by the flag's own version column (optimistic check, retried) everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cms.audit import Actor, record_event
from cms.errors import Conflict, NotFound, ValidationFailed
from cms.flags.registry import FLAGS, KEY_PATTERN, FlagSpec, is_plugin_flag, plugin_flag_spec
from cms.models import AuditEvent, FeatureFlag, FlagVersion, utcnow

logger = logging.getLogger(__name__)

REASON_MIN, REASON_MAX = 3, 500
TARGET_LISTS = ("agents", "agencies", "roles")
TARGET_ROLES = ("agent", "admin")
MAX_TARGETS = 500
ATTEMPTS = 5

Notify = Callable[[int], None]


@dataclass(frozen=True)
class FlagView:
    """A flag as plain values: a stored row, or a declared core flag nobody has changed yet."""

    key: str
    description: str
    kind: str
    enabled: bool
    rollout_percent: int
    targeting: dict[str, list[Any]]
    default: bool
    version: int
    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def of(cls, row: FeatureFlag) -> "FlagView":
        return cls(row.key, row.description, row.kind, row.enabled, row.rollout_percent,
                   normalized_targeting(row.targeting), row.default, row.version, row.updated_at,
                   row.updated_by)

    @classmethod
    def declared(cls, spec: FlagSpec) -> "FlagView":
        return cls(spec.key, spec.description, spec.kind, spec.default, 100,
                   normalized_targeting({}), spec.default, 0, None, None)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "description": self.description, "kind": self.kind,
            "enabled": self.enabled, "rollout_percent": self.rollout_percent,
            "targeting": self.targeting, "default": self.default, "version": self.version,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }


def normalized_targeting(targeting: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """The targeting of a stored row with all three lists present."""
    targeting = targeting or {}
    return {name: list(targeting.get(name) or []) for name in TARGET_LISTS}


def _state(row: FeatureFlag) -> dict[str, Any]:
    return {"enabled": row.enabled, "rollout_percent": row.rollout_percent,
            "targeting": normalized_targeting(row.targeting)}


# Validation -----------------------------------------------------------------------------------

def clean_reason(reason: str | None) -> str:
    """The reason trimmed; raises ValidationFailed unless it has 3 to 500 characters."""
    text = (reason or "").strip()
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise ValidationFailed(
            f"A reason of {REASON_MIN} to {REASON_MAX} characters is required.",
            {"reason": ["Say why: it goes into the audit log."]},
        )
    return text


def clean_percent(percent: object) -> int:
    """`percent` as an int 0..100; raises ValidationFailed (booleans are not numbers here)."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValidationFailed("The rollout percentage must be a whole number from 0 to 100.",
                               {"rollout_percent": ["Use a whole number from 0 to 100."]})
    return percent


def clean_targeting(targeting: object) -> dict[str, list[Any]]:
    """Targeting with only "agents" (usernames or user ids, as strings), "agencies" (ids) and
    "roles" ("agent", "admin"), deduplicated in order; raises ValidationFailed."""
    if not isinstance(targeting, Mapping):
        raise _bad_targeting("Targeting must be an object with agents, agencies and roles lists.")
    unknown = sorted(set(targeting) - set(TARGET_LISTS))
    if unknown:
        raise _bad_targeting(f"Unknown targeting list(s): {', '.join(map(str, unknown))}; "
                             "use agents, agencies and roles.")
    cleaned: dict[str, list[Any]] = {}
    for name in TARGET_LISTS:
        values = targeting.get(name) or []
        if not isinstance(values, list) or len(values) > MAX_TARGETS:
            raise _bad_targeting(f"targeting.{name} must be a list of at most {MAX_TARGETS} items.")
        items = [_target_item(name, value) for value in values]
        cleaned[name] = list(dict.fromkeys(items))
    return cleaned


def _target_item(name: str, value: object) -> Any:
    if name == "agencies":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _bad_targeting(f"targeting.agencies holds agency ids (whole numbers), not {value!r}.")
        return value
    if name == "roles":
        if value not in TARGET_ROLES:
            raise _bad_targeting(f"targeting.roles may hold {' and '.join(TARGET_ROLES)}, not {value!r}.")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and 1 <= len(value.strip()) <= 64:
        return value.strip().lower()
    raise _bad_targeting(f"targeting.agents holds usernames or user ids, not {value!r}.")


def _bad_targeting(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"targeting": [message]})


# Reading --------------------------------------------------------------------------------------

def list_flags(session: Session) -> list[FlagView]:
    """Every stored flag plus every declared core flag without a row, sorted by key."""
    views = {row.key: FlagView.of(row) for row in session.scalars(select(FeatureFlag))}
    for key, spec in FLAGS.items():
        views.setdefault(key, FlagView.declared(spec))
    return [views[key] for key in sorted(views)]


def get_flag(session: Session, key: str) -> FlagView:
    """The flag `key`; raises NotFound (not stored and not a declared core flag)."""
    row = session.get(FeatureFlag, key) if KEY_PATTERN.match(key) else None
    if row is not None:
        return FlagView.of(row)
    spec = FLAGS.get(key)
    if spec is None:
        raise NotFound(f"There is no flag {key[:64]!r}.")
    return FlagView.declared(spec)


def config_version(session: Session) -> int:
    """The current config version (0 before the first change)."""
    return session.scalar(select(FlagVersion.version).where(FlagVersion.id == 1)) or 0


# Writing --------------------------------------------------------------------------------------

def bump_config_version(session: Session) -> int:
    """Add one to the config version in this transaction (locking its row) and return it.

    Call it in the transaction of any change that workers keep in their snapshot (flags, and
    the plugin state); after the commit, `notify(version)` tells every worker at once, and
    workers that miss the message see the new version within the poll interval."""
    bumped = session.execute(
        update(FlagVersion).where(FlagVersion.id == 1).values(version=FlagVersion.version + 1)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        session.add(FlagVersion(id=1, version=1))
        session.flush()
        return 1
    return int(session.scalar(select(FlagVersion.version).where(FlagVersion.id == 1)) or 0)


def _new_row(spec: FlagSpec, enabled: bool) -> FeatureFlag:
    return FeatureFlag(key=spec.key, description=spec.description, kind=spec.kind,
                       enabled=enabled, rollout_percent=100, targeting=normalized_targeting({}),
                       default=spec.default, updated_at=utcnow())


def _locked_row(session: Session, key: str) -> FeatureFlag:
    """The flag's row, locked until commit; a declared core flag gets its row on first change."""
    row: FeatureFlag | None = session.scalar(
        select(FeatureFlag).where(FeatureFlag.key == key).with_for_update()
        .execution_options(populate_existing=True)
    )
    if row is not None:
        return row
    spec = FLAGS.get(key)
    if spec is None:
        raise NotFound(f"There is no flag {key[:64]!r}.")
    row = _new_row(spec, spec.default)
    session.add(row)
    session.flush()
    return row


def set_flag(
    session: Session,
    actor: Actor,
    key: str,
    *,
    enabled: bool | None = None,
    rollout_percent: int | None = None,
    targeting: Mapping[str, Any] | None = None,
    reason: str,
    notify: Notify | None = None,
) -> FlagView:
    """Change a flag, audit it with before/after and `reason`, bump the config version, commit,
    then call `notify(version)`. Returns the flag as stored; a change that changes nothing
    writes nothing. Raises ValidationFailed, NotFound, or Conflict (still contended after retries).
    """
    text = clean_reason(reason)
    if enabled is not None and not isinstance(enabled, bool):
        raise ValidationFailed("enabled must be true or false.", {"enabled": ["Choose on or off."]})
    percent = None if rollout_percent is None else clean_percent(rollout_percent)
    wanted_targets = None if targeting is None else clean_targeting(targeting)
    if not KEY_PATTERN.match(key):
        raise NotFound(f"There is no flag {key[:64]!r}.")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            row = _locked_row(session, key)
            before = _state(row)
            if enabled is not None:
                row.enabled = enabled
            if percent is not None:
                row.rollout_percent = percent
            if wanted_targets is not None:
                row.targeting = wanted_targets
            after = _state(row)
            if after == before:
                session.rollback()
                return get_flag(session, key)
            changed = [name for name in after if after[name] != before[name]]
            row.updated_at, row.updated_by = utcnow(), actor.username[:64]
            version = bump_config_version(session)
            record_event(
                session, actor, "flag.update", target_type="flag", target_id=key, target_label=key,
                agency_id=None, before={name: before[name] for name in changed},
                after={**{name: after[name] for name in changed}, "reason": text},
            )
            session.flush()
            view = FlagView.of(row)
            session.commit()
        except (StaleDataError, IntegrityError):
            session.rollback()
            logger.info("flag %s: concurrent change, retrying (attempt %d)", key, attempt)
            continue
        except Exception:
            session.rollback()
            raise
        logger.info("flag %s changed by %s (config version %d): %s", key, actor.username,
                    version, ", ".join(changed))
        if notify is not None:
            notify(version)
        return view
    raise Conflict("Others are changing this flag right now. Reload it and try again.")


def ensure_plugin_flag(session: Session, plugin_id: str, name: str) -> FeatureFlag:
    """Add the flag `plugin.<id>` (on for everyone, a kill switch) unless it exists; the caller
    commits. Workers see a new flag within the poll interval (plugin flags fail closed until then).
    """
    spec = plugin_flag_spec(plugin_id, name)
    if not KEY_PATTERN.match(spec.key) or not is_plugin_flag(spec.key):
        raise ValidationFailed(f"{plugin_id!r} is not a valid plugin id.")
    row = session.get(FeatureFlag, spec.key)
    if row is not None:
        return row
    row = _new_row(spec, enabled=True)
    row.updated_by = "system"
    session.add(row)
    bump_config_version(session)
    return row


def flag_history(session: Session, key: str, limit: int = 10) -> list[AuditEvent]:
    """The flag's latest audit events, newest first."""
    return list(session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "flag", AuditEvent.target_id == key)
        .order_by(AuditEvent.id.desc()).limit(limit)
    ))
