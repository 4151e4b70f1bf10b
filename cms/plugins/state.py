"""Which plugin versions agents get, as one immutable snapshot per worker.

The installs (current, canary and previous version, grants, on/off) and the versions they name
(checksum, quarantine) change only through audited admin or monitoring actions, and every such
change bumps the config version the flags already follow (`cms.flags.bump_config_version`).
The flag store loads this state with the flags, in the same connection at the same version, so
a request answers "which version does this agent get" from memory and makes no query for it.

Pure and Flask-free: `load_plugin_state` takes a connection; `PluginState.serving` is a
function of the snapshot and the agent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Connection

from cms.models import PluginInstall, PluginVersion
from cms.monitoring.detectors import Lineage


@dataclass(frozen=True)
class VersionState:
    """What choosing a version needs of one stored version (never its module or manifest)."""

    plugin_id: str
    version: str
    sha256: str
    quarantined: bool = False
    quarantine_reason: str | None = None
    #: Released with a gate override (the monitor watches it more tightly).
    gate_override: bool = False


@dataclass(frozen=True)
class InstallState:
    """One installed plugin: its versions in rollout and what it was granted."""

    plugin_id: str
    enabled: bool
    version: str
    canary_version: str | None = None
    canary_percent: int = 0
    previous_version: str | None = None
    granted: frozenset[str] = frozenset()


class _InstallLike(Protocol):
    @property
    def plugin_id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def canary_version(self) -> str | None: ...
    @property
    def canary_percent(self) -> int: ...
    @property
    def previous_version(self) -> str | None: ...


def cohort(plugin_id: str, user_id: int) -> int:
    """An agent's sticky bucket 0..99 for a plugin's canary (the same on every host)."""
    return int.from_bytes(hashlib.sha256(f"canary:{plugin_id}:{user_id}".encode()).digest()[:4],
                          "big") % 100


def wanted_versions(install: _InstallLike, user_id: int) -> list[str]:
    """The versions this agent may get, best first: the canary for its cohort, the current
    one, then the previous one (the fallbacks when a version is quarantined)."""
    wanted = []
    if install.canary_version and cohort(install.plugin_id, user_id) < install.canary_percent:
        wanted.append(install.canary_version)
    wanted += [v for v in (install.version, install.previous_version) if v and v not in wanted]
    return wanted


@dataclass(frozen=True)
class PluginState:
    """Every install and the versions they name, at one config version. Replaced whole."""

    installs: Mapping[str, InstallState] = field(default_factory=lambda: MappingProxyType({}))
    versions: Mapping[tuple[str, str], VersionState] = field(
        default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, installs: Iterable[InstallState], versions: Iterable[VersionState]) -> "PluginState":
        return cls(MappingProxyType({i.plugin_id: i for i in sorted(installs, key=lambda i: i.plugin_id)}),
                   MappingProxyType({(v.plugin_id, v.version): v for v in versions}))

    def enabled(self) -> list[InstallState]:
        """The installs that are on, by plugin id."""
        return [i for i in self.installs.values() if i.enabled]

    def lineage(self) -> dict[tuple[str, str], Lineage]:
        """For the monitor: per stored version in rollout, the version it replaced (a canary
        replaces the current version; the current one, the previous), its gate override and
        its gate figures."""
        found = {}
        for key, row in self.versions.items():
            install = self.installs.get(row.plugin_id)
            predecessor, canary = None, False
            if install is not None:
                if row.version == install.canary_version and install.canary_percent > 0:
                    predecessor, canary = install.version, True
                elif row.version == install.version:
                    predecessor = install.previous_version
            found[key] = Lineage(predecessor if predecessor != row.version else None,
                                 row.gate_override, canary)
        return found

    def serving(self, install: InstallState, user_id: int) -> VersionState | None:
        """The version this agent gets: the first of `wanted_versions` that is stored and not
        quarantined; None when none is usable (the plugin is then off for the agent)."""
        for version in wanted_versions(install, user_id):
            row = self.versions.get((install.plugin_id, version))
            if row is not None and not row.quarantined:
                return row
        return None


def load_plugin_state(conn: Connection) -> PluginState:
    """Read every install and the versions they name (two statements, no module bytes)."""
    i, v = PluginInstall.__table__, PluginVersion.__table__
    installs = [InstallState(r.plugin_id, bool(r.enabled), r.version, r.canary_version,
                             int(r.canary_percent or 0), r.previous_version,
                             frozenset(r.granted or ()))
                for r in conn.execute(select(i.c.plugin_id, i.c.enabled, i.c.version,
                                             i.c.canary_version, i.c.canary_percent,
                                             i.c.previous_version, i.c.granted))]
    named = {(s.plugin_id, n) for s in installs
             for n in (s.version, s.canary_version, s.previous_version) if n}
    ids = sorted({plugin_id for plugin_id, _ in named})
    versions = [VersionState(r.plugin_id, r.version, r.sha256, r.quarantined_at is not None,
                             r.quarantine_reason, bool((r.gate_override or "").strip()))
                for r in conn.execute(select(v.c.plugin_id, v.c.version, v.c.sha256,
                                             v.c.quarantined_at, v.c.quarantine_reason,
                                             v.c.gate_override)
                                      .where(v.c.plugin_id.in_(ids)))
                if (r.plugin_id, r.version) in named] if ids else []
    return PluginState.of(installs, versions)


def plugin_state_of(extras: Mapping[str, Any] | None) -> PluginState | None:
    """The plugin state a flag snapshot carries (None when it has none)."""
    value = (extras or {}).get("plugins")
    return value if isinstance(value, PluginState) else None
