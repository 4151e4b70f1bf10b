"""Every core flag, declared once with its kind and default; plugin flags follow one rule.

A core flag needs no database row: until an admin changes it, it is what its `default` says. A
`plugin.<id>` flag exists only as a row (`ensure_plugin_flag`); a missing one means "off".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
KINDS = ("kill_switch", "release", "operational")
PLUGIN_PREFIX = "plugin."


@dataclass(frozen=True)
class FlagSpec:
    """A flag's declaration: what it is for, and its value when no admin has set it."""

    key: str
    description: str
    kind: str
    default: bool


def is_plugin_flag(key: str) -> bool:
    """True for `plugin.<id>` keys, which fail closed."""
    return key.startswith(PLUGIN_PREFIX)


def _declare(*specs: FlagSpec) -> Mapping[str, FlagSpec]:
    for spec in specs:
        if not KEY_PATTERN.match(spec.key) or spec.kind not in KINDS or is_plugin_flag(spec.key):
            raise ValueError(f"bad core flag declaration: {spec}")
    return MappingProxyType({spec.key: spec for spec in specs})


#: The core flags. Core flags fail open: when flags cannot be read, each is its `default`.
FLAGS: Mapping[str, FlagSpec] = _declare(
    FlagSpec(
        "plugins.all", "Every plugin at once: off hides all plugin panels and refuses all plugin "
        "actions for every agent.", "kill_switch", True,
    ),
    FlagSpec(
        "plugins.auto_quarantine", "Quarantine a plugin version automatically after repeated "
        "faults (off: faults are only counted).", "operational", True,
    ),
)


def plugin_flag_key(plugin_id: str) -> str:
    """The flag key of plugin `plugin_id`: `plugin.<id>`."""
    return f"{PLUGIN_PREFIX}{plugin_id}"


def plugin_flag_spec(plugin_id: str, name: str) -> FlagSpec:
    """The declaration of a plugin's flag: a kill switch that is off when flags cannot be read."""
    return FlagSpec(
        plugin_flag_key(plugin_id),
        f"The {name} plugin: off hides it from every agent at once.",
        "kill_switch",
        False,
    )


def fallback(key: str, default: bool | None = None) -> bool:
    """A flag's value when it is unknown or flags cannot be read: plugins off, core features on.

    `default` (the caller's) wins for core flags; then the declared default; then True.
    """
    if is_plugin_flag(key):
        return False
    if default is not None:
        return default
    spec = FLAGS.get(key)
    return spec.default if spec is not None else True
