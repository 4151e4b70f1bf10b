"""Evaluating a flag for an agent from an in-memory snapshot: pure functions, no I/O.

Rules, in order: a disabled flag is off. When any targeting list is non-empty, the agent must
match at least one of them (user id or username, agency id, role) to be eligible. An eligible
agent is in when `sha256("<key>:<user id>") mod 100 < rollout_percent`, so each agent keeps its
answer while the percentage stays put, and raising the percentage only adds agents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from cms.flags.registry import fallback


@dataclass(frozen=True)
class AgentRef:
    """Who a flag is evaluated for, as plain values."""

    user_id: int
    agency_id: int | None
    role: str
    username: str | None = None

    @classmethod
    def for_user(cls, user: Any) -> "AgentRef":
        """The AgentRef of a `cms.models.User` (or anything with the same attributes)."""
        role = getattr(user.role, "value", user.role)
        return cls(user.id, user.agency_id, str(role), user.username)


@dataclass(frozen=True)
class FlagRule:
    """What evaluation needs of one flag, immutable so a snapshot can be shared by threads."""

    key: str
    enabled: bool
    rollout_percent: int = 100
    agents: frozenset[str] = frozenset()
    agencies: frozenset[int] = frozenset()
    roles: frozenset[str] = frozenset()

    @classmethod
    def from_row(cls, key: str, enabled: bool, rollout_percent: int,
                 targeting: Mapping[str, Any] | None) -> "FlagRule":
        targeting = targeting or {}
        return cls(
            key=key,
            enabled=bool(enabled),
            rollout_percent=int(rollout_percent),
            agents=frozenset(str(a) for a in targeting.get("agents") or ()),
            agencies=frozenset(int(a) for a in targeting.get("agencies") or ()),
            roles=frozenset(str(r) for r in targeting.get("roles") or ()),
        )

    @property
    def targeted(self) -> bool:
        return bool(self.agents or self.agencies or self.roles)

    def eligible(self, agent: AgentRef) -> bool:
        """True when the flag has no targeting or `agent` matches one of its lists."""
        if not self.targeted:
            return True
        return (
            str(agent.user_id) in self.agents
            or (agent.username is not None and agent.username in self.agents)
            or (agent.agency_id is not None and agent.agency_id in self.agencies)
            or agent.role in self.roles
        )

    def evaluate(self, agent: AgentRef | None) -> bool:
        """This flag's answer for `agent`; with no agent, only a flag that is on for everyone is on."""
        if not self.enabled:
            return False
        if agent is None:
            return self.rollout_percent >= 100 and not self.targeted
        return self.eligible(agent) and bucket(self.key, agent.user_id) < self.rollout_percent


def bucket(key: str, user_id: int) -> int:
    """The agent's sticky position 0..99 for flag `key`."""
    digest = hashlib.sha256(f"{key}:{user_id}".encode()).digest()
    return int.from_bytes(digest, "big") % 100


@dataclass(frozen=True)
class Snapshot:
    """Every flag row at one config version, plus what other areas load at that same version
    (`extras`, e.g. the plugin state under "plugins"). Replaced whole, never mutated."""

    version: int
    rules: Mapping[str, FlagRule] = field(default_factory=lambda: MappingProxyType({}))
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def is_enabled(self, key: str, agent: AgentRef | None, default: bool | None = None) -> bool:
        """The flag's answer for `agent`; an unknown key gets `fallback(key, default)`."""
        rule = self.rules.get(key)
        if rule is None:
            return fallback(key, default)
        return rule.evaluate(agent)
