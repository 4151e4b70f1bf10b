"""Feature flags: declared in `registry`, stored in the database, evaluated in memory.

Read a flag through `is_enabled(key, agent)` (this app's FlagStore); change one with `set_flag`;
give every installed plugin its kill switch with `ensure_plugin_flag`. See docs/flags.md.
"""

from __future__ import annotations

from cms.flags.evaluation import AgentRef, FlagRule, Snapshot, bucket
from cms.flags.registry import FLAGS, FlagSpec, fallback, is_plugin_flag, plugin_flag_key
from cms.flags.service import (
    FlagView,
    Notify,
    bump_config_version,
    config_version,
    ensure_plugin_flag,
    get_flag,
    list_flags,
    set_flag,
)
from cms.flags.store import FlagStore, SqlFlagSource

__all__ = [
    "FLAGS",
    "AgentRef",
    "FlagRule",
    "FlagSpec",
    "FlagStore",
    "FlagView",
    "Snapshot",
    "SqlFlagSource",
    "Notify",
    "bucket",
    "bump_config_version",
    "config_version",
    "ensure_plugin_flag",
    "fallback",
    "get_flag",
    "is_enabled",
    "is_plugin_flag",
    "list_flags",
    "plugin_flag_key",
    "set_flag",
]


def is_enabled(key: str, agent: AgentRef | None, default: bool | None = None) -> bool:
    """The flag `key` for `agent` in the current app (needs an app context); never raises.

    Unknown `plugin.*` flags are off; unknown core flags are `default` (else declared, else True).
    """
    from cms.app_state import state

    return state().flags.is_enabled(key, agent, default)
