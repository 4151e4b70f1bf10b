"""The plugins this CMS can run: built plugins found in the plugin folder (`wasm/<id>/`), loaded
into the runtime per grant set, plus what each process saw of their health.

Flask-free; the app keeps one registry on its state. Which plugins are on, and what they may do,
is in the database (`PluginInstall`); the registry only knows what exists.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import jsonschema

from cms.plugins.breaker import FaultCounter
from cms.runtime import Plugin, Runtime
from plugin_sdk.manifest import MANIFEST_NAME, Manifest, ManifestError, load_manifest, parse_manifest

if TYPE_CHECKING:
    from cms.models import PluginVersion
    from cms.plugins.state import VersionState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltPlugin:
    """A plugin's built manifest and module."""

    manifest: Manifest
    wasm: bytes
    folder: Path | None = None
    manifest_text: str = ""
    vectors: dict[str, str] = field(default_factory=dict)
    _validators: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def validator(self, action: str) -> Any:
        """The compiled JSON Schema validator of `action`'s params (built once per version);
        the action must exist."""
        found = self._validators.get(action)
        if found is None:
            found = jsonschema.Draft202012Validator(self.manifest.actions[action].params_schema)
            self._validators[action] = found
        return found


@dataclass(frozen=True)
class Health:
    """The last outcome of a plugin in this process: ok, or the fault kind."""

    ok: bool
    kind: str | None
    at: float


class PluginRegistry:
    """Built plugins by id, and their loaded runtime plugins (one per grant set)."""

    def __init__(self, runtime: Runtime, plugin_dir: Path, faults: FaultCounter | None = None) -> None:
        self.runtime = runtime
        self.plugin_dir = plugin_dir
        self.faults = faults or FaultCounter(None)
        self._versions: dict[tuple[str, str, str], BuiltPlugin] = {}
        self._built: dict[str, BuiltPlugin] | None = None
        self._loaded: dict[tuple[str, str, frozenset[str]], Plugin] = {}
        self._health: dict[str, Health] = {}
        self._lock = threading.Lock()

    def built(self) -> dict[str, BuiltPlugin]:
        """Every plugin in `plugin_dir/*/plugin.toml` (read once per process; bad ones logged)."""
        if self._built is None:
            found: dict[str, BuiltPlugin] = {}
            for manifest_path in sorted(self.plugin_dir.glob(f"*/{MANIFEST_NAME}")):
                try:
                    manifest = load_manifest(manifest_path)
                    if manifest.module_file is None:
                        raise ManifestError(str(manifest_path), "module", "missing: not a built plugin")
                    wasm = (manifest_path.parent / manifest.module_file).read_bytes()
                    vectors = {f"{manifest.tests}/{p.name}": p.read_text(encoding="utf-8")
                               for p in sorted((manifest_path.parent / manifest.tests).glob("*.json"))}
                except (ManifestError, OSError) as exc:
                    logger.error("plugin at %s skipped: %s", manifest_path.parent, exc)
                    continue
                found[manifest.id] = BuiltPlugin(manifest, wasm, manifest_path.parent,
                                                 manifest_path.read_text(encoding="utf-8"), vectors)
            self._built = found
        return self._built

    def get(self, plugin_id: str) -> BuiltPlugin | None:
        return self.built().get(plugin_id)

    def for_version(self, row: PluginVersion) -> BuiltPlugin:
        """The built plugin of a stored version (its module read from the database once)."""
        key = (row.plugin_id, row.version, row.sha256)
        built = self._versions.get(key)
        if built is None:
            manifest = parse_manifest(row.manifest_text, f"{row.plugin_id} {row.version}")
            built = BuiltPlugin(manifest, row.wasm, None, row.manifest_text, dict(row.vectors))
            with self._lock:
                self._versions[key] = built
        return built

    def for_state(self, version: VersionState, load: Callable[[], PluginVersion]) -> BuiltPlugin:
        """The built plugin of a version in the plugin snapshot; `load()` fetches its stored row
        only the first time this process needs that version (by checksum)."""
        built = self._versions.get((version.plugin_id, version.version, version.sha256))
        return built if built is not None else self.for_version(load())

    def plugin(self, built: BuiltPlugin, grants: frozenset[str]) -> Plugin:
        """The runtime plugin for `built` with `grants`; raises PluginFault when it cannot load."""
        key = (built.manifest.id, built.manifest.version, grants)
        plugin = self._loaded.get(key)
        if plugin is None:
            limits = self.runtime.config.defaults.with_requests(dict(built.manifest.limits),
                                                                self.runtime.config.caps)
            plugin = self.runtime.load(built.wasm, plugin_id=built.manifest.id,
                                       version=built.manifest.version, limits=limits, grants=grants)
            with self._lock:
                self._loaded[key] = plugin
        return plugin

    def close(self) -> None:
        """Forget loaded plugins and stop the runtime (tests build many apps in one process)."""
        with self._lock:
            self._loaded.clear()
            self._versions.clear()
        self.runtime.close()

    def note(self, plugin_id: str, kind: str | None) -> None:
        """Record a call's outcome (None: ok) for the at-a-glance status."""
        self._health[plugin_id] = Health(kind is None, kind, time.monotonic())

    def health(self, plugin_id: str) -> Health | None:
        return self._health.get(plugin_id)
