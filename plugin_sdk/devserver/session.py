"""One plugin under preview: its build (into a scratch folder, never the author's dist/), its
module in the server's sandbox with an in-memory host, and rebuilds when a source changes.

Flask-free. Every call and rebuild holds one lock (wasmtime objects are not thread-safe).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from cms.errors import DomainError, NotFound
from cms.ids import parse_id
from cms.plugins.registry import BuiltPlugin
from cms.plugins.service import (ActionOutcome, PanelView, PluginDenied, PluginFaulted,
                                 PluginParamsInvalid, PluginUnavailable, check_action)
from cms.runtime import (DEFAULT_CAPS, DEFAULT_LIMITS, CallStats, Limits, LimitsError, Plugin,
                         PluginFault, Runtime, RuntimeConfig, attributed)
from plugin_sdk import abi, project
from plugin_sdk.abi import EnvelopeError, FaultKind
from plugin_sdk.devserver.host import CallRecord, DevHost, World
from plugin_sdk.manifest import Manifest, ManifestError, Panel
from plugin_sdk.toolchain import ToolchainError
from plugin_sdk.ui import UIError, check_blocks

#: Names under the plugin folder that are outputs, not sources.
IGNORED = frozenset({project.DIST, ".git", "zig-cache", ".zig-cache", "node_modules", "target"})


@dataclass(frozen=True)
class Build:
    """The latest build: a loaded plugin, or the error that stopped it."""

    version: int
    at: datetime
    seconds: float
    built: BuiltPlugin | None = None
    limits: Limits | None = None
    error: str | None = None


@dataclass
class Call:
    """One call the preview made: its panel view, stats, host calls and fault, if any."""

    view: PanelView
    record: CallRecord
    stats: CallStats | None = None
    fault: str | None = None
    fault_message: str | None = None


class _LogLines(logging.Handler):
    def __init__(self, record: CallRecord) -> None:
        super().__init__(logging.DEBUG)
        self.record = record

    def emit(self, entry: logging.LogRecord) -> None:
        # The runtime logs "id@version: line"; the dev panel shows the line.
        self.record.logs.append(f"{entry.levelname.lower()}: {entry.getMessage().split(': ', 1)[-1]}")


@contextmanager
def _plugin_log(plugin_id: str, record: CallRecord) -> Iterator[None]:
    """The plugin's cms.log lines of one call, collected into `record`."""
    logger = logging.getLogger(f"cms.plugins.{plugin_id}")
    handler, level = _LogLines(record), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def sources_stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of every source file under `folder`, outputs excluded."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in IGNORED or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            stat = path.stat()
            found.append((str(relative), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


class DevSession:
    """A plugin folder under preview. `rebuild()` and `poll()` never raise for the author's
    mistakes: a failed build is kept in `build.error` and the last good module stays loaded."""

    def __init__(self, folder: Path, artifact_dir: Path, world: World | None = None) -> None:
        self.folder = Path(folder)
        self.world = world or World()
        self._scratch = tempfile.TemporaryDirectory(prefix="cms-plugin-dev-")
        self._artifact_dir = artifact_dir
        self._lock = threading.RLock()
        self._runtime: Runtime | None = None
        self._plugin: Plugin | None = None
        self._stamp = sources_stamp(self.folder)
        self.build = Build(0, datetime.now(timezone.utc), 0.0, error="not built yet")
        self.rebuild()

    def close(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
            self._scratch.cleanup()

    @property
    def manifest(self) -> Manifest | None:
        return self.build.built.manifest if self.build.built is not None else None

    def rebuild(self) -> Build:
        """Build, load and check the plugin; the new Build (its version one higher)."""
        started = time.perf_counter()
        with self._lock:
            version = self.build.version + 1
            try:
                result = project.build(self.folder, Path(self._scratch.name) / "dist")
                wasm = result.module_path.read_bytes()
                manifest = result.manifest
                limits = DEFAULT_LIMITS.with_requests(dict(manifest.limits), DEFAULT_CAPS)
                host = DevHost(self.world, manifest.id, manifest.http_allow)
                runtime = Runtime(RuntimeConfig(artifact_dir=self._artifact_dir,
                                                compile_missing=True), host.ops())
                try:
                    plugin = runtime.load(wasm, plugin_id=manifest.id, version=manifest.version,
                                          limits=limits, grants=manifest.capabilities)
                except BaseException:
                    runtime.close()
                    raise
            except (ManifestError, ToolchainError, project.ProjectError, LimitsError) as exc:
                self.build = self._failed(version, started, str(exc))
                return self.build
            except PluginFault as fault:
                self.build = self._failed(version, started,
                                          f"the module cannot load: {fault.kind}: {fault.message}")
                return self.build
            if self._runtime is not None:
                self._runtime.close()
            self._runtime, self._plugin = runtime, plugin
            self.build = Build(version, datetime.now(timezone.utc),
                               round(time.perf_counter() - started, 3),
                               BuiltPlugin(manifest, wasm, self.folder), limits)
            return self.build

    def _failed(self, version: int, started: float, error: str) -> Build:
        """A failed build that keeps the last good module (its panels still render)."""
        return Build(version, datetime.now(timezone.utc), round(time.perf_counter() - started, 3),
                     self.build.built, self.build.limits, error)

    def poll(self) -> bool:
        """Rebuild when a source changed since the last look; True when it did."""
        stamp = sources_stamp(self.folder)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self.rebuild()
        return True

    def panels(self, slot: str) -> list[Panel]:
        manifest = self.manifest
        return [p for p in manifest.panels if p.slot == slot] if manifest is not None else []

    def context(self, slot: str | None, client_id: int | None) -> dict[str, Any]:
        """The call context a real call gets (cms.plugins.service): agent, now, client, slot."""
        context: dict[str, Any] = {
            "agent": {k: self.world.agent.get(k) for k in ("id", "username", "name", "agency_id")},
            "now": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        client = self.world.client_context(client_id)
        if client is not None:
            context["client"] = client
        if slot:
            context["slot"] = slot
        return context

    def call(self, action: str, params: Any, slot: str | None, client_id: int | None,
             title: str | None = None) -> Call:
        """Run `action` as the server would for a panel or a form post; every failure ends up
        in the returned Call's view (never raised). Writes survive only an ok answer."""
        with self._lock:
            built = self.build.built
            if built is None or self._plugin is None:
                raise PluginUnavailable("The plugin has not built yet.")
            manifest = built.manifest
            title = title or next((p.title for p in manifest.panels if p.slot == slot), manifest.name)
            record = CallRecord(client_id)

            def view(outcome: ActionOutcome | None, error: DomainError | None) -> PanelView:
                return PanelView(manifest.id, manifest.name, title, action, outcome, error,
                                 manifest.fallback)

            try:
                data = self._input(built, action, params, slot, client_id)
            except DomainError as exc:
                return Call(view(None, exc), record)
            saved = self.world.snapshot()
            try:
                with _plugin_log(manifest.id, record):
                    result = self._plugin.call_raw(data, {"dev": record})
                if result.ok:
                    check_blocks(result.output.get("ui", []), manifest.actions)
            except PluginFault as fault:
                self.world.restore(saved)
                return self._fault(view, record, fault.kind, fault.message, fault.stats,
                                   manifest.fallback)
            except UIError as exc:
                self.world.restore(saved)
                kind, message = attributed(FaultKind.INVALID_OUTPUT, f"invalid UI blocks: {exc}",
                                           result.stats)
                return self._fault(view, record, kind, message, result.stats, manifest.fallback)
            if not result.ok:
                self.world.restore(saved)
            outcome = ActionOutcome(manifest.id, action, result.output, result.stats)
            return Call(view(outcome, None), record, result.stats)

    @staticmethod
    def _fault(view: Any, record: CallRecord, kind: FaultKind, message: str,
               stats: CallStats | None, fallback: str) -> Call:
        error: DomainError = (PluginDenied(message, fallback) if kind == FaultKind.CAPABILITY_DENIED
                              else PluginFaulted(str(kind), message, fallback))
        return Call(view(None, error), record, stats, str(kind), message)

    def _input(self, built: BuiltPlugin, action: str, params: Any, slot: str | None,
               client_id: int | None) -> bytes:
        """The encoded input envelope, after the server's checks of action, params and ids."""
        check_action(built, action, params)
        if client_id is not None and client_id not in self.world.clients:
            raise NotFound("This client does not exist.")
        for key, known, label in (("client_id", self.world.clients, "client"),
                                  ("booking_id", self.world.state["bookings"], "booking")):
            value = params.get(key)
            if value is None or value == "" or value == 0:
                continue
            if parse_id(value, key) not in known:
                raise NotFound(f"This {label} does not exist.")
        try:
            return abi.encode_input(action, params, self.context(slot, client_id))
        except EnvelopeError as exc:
            raise PluginParamsInvalid(str(exc)) from None

    def host_state(self) -> Mapping[str, Any]:
        """What calls stored so far: kv by owner, the outbox and activity entries."""
        with self._lock:
            state = self.world.state
            return {"kv": {owner: {k: v for k, (v, _) in values.items()}
                           for owner, values in state["kv"].items() if values},
                    "outbox": list(state["outbox"]), "activity": list(state["activity"])}
