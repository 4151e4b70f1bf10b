"""The control run's app: the CMS with the faulty plugin versions run in-process as plain Python,
the way the old CMS ran plugins (no sandbox, no limits, no fault types, so no circuit breaker).

    gunicorn -c <config> bench.replay.legacy_app:app

Only the three faulty versions are swapped for Python (the good versions still run in wasmtime,
so the baseline is the same as the sandboxed run's). Each re-implements its wasm module's bug:

- softphone 1.1.0-leaky: after every action, re-reads the agent's whole call history and keeps
  every entry as a padded 4 KB record, twice; nothing trims it. In-process, that history lives
  in the worker's memory, capped at REPLAY_LEAK_CAP_MB per worker (the safety bound).
- mail 1.1.0-spinning: compose and send wait for a relay that is never ready, re-rendering the
  mail every turn; bounded at REPLAY_SPIN_LIMIT_S, past Gunicorn's timeout, which ends it first.
- terminal 1.1.0-failing: its host calls are refused, and it raises instead of coping (a trap in
  wasm; an unhandled exception here, so the page that shows its panel fails).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable

from cms import create_app
from cms.runtime import CallResult, CallStats

logger = logging.getLogger(__name__)

LEAK_CAP_BYTES = int(float(os.environ.get("REPLAY_LEAK_CAP_MB", "400")) * 1024 * 1024)
SPIN_LIMIT_S = float(os.environ.get("REPLAY_SPIN_LIMIT_S", "90"))
RECORD_BYTES = 4096

Output = dict[str, Any]


class LeakySoftphone:
    """softphone 1.1.0-leaky's history, kept in this worker's memory."""

    def __init__(self) -> None:
        self.history: dict[int, list[bytearray]] = {}
        self.copies: dict[int, list[bytearray]] = {}
        self.kept_bytes = 0

    def __call__(self, envelope: Output) -> Output:
        agent = int(envelope["context"].get("agent", {}).get("id") or 0)
        entries = self.history.setdefault(agent, [])
        # Read and "parse" the whole history, every call.
        calls = sum(1 for record in entries if record[:1] == b"#")
        client = envelope["context"].get("client", {}).get("id", 0)
        text = (f"#{calls + 1} {envelope['context'].get('now')} {envelope['action']} "
                f"client {client} {json.dumps(envelope['params'])[:60]}").encode()
        if self.kept_bytes < LEAK_CAP_BYTES:  # the control's safety bound, not the bug's
            record = bytearray(RECORD_BYTES)
            record[:len(text)] = text
            entries.append(record)
            self.copies.setdefault(agent, []).append(bytearray(record))
            self.kept_bytes += 2 * RECORD_BYTES
        return {"ok": True, "ui": [{"type": "heading", "text": f"Phone ({calls + 1} calls)"}]}


def spinning_mail(envelope: Output) -> Output:
    """mail 1.1.0-spinning: compose and send wait for a relay that never gets ready."""
    if envelope["action"] not in ("compose", "send"):
        return {"ok": True, "ui": [{"type": "heading", "text": "Mail"}]}
    deadline = time.monotonic() + SPIN_LIMIT_S
    turn = 0
    while time.monotonic() < deadline:  # the relay is never ready
        body = "\n".join(f"Booking confirmation {turn}: line {i}" for i in range(50))
        turn += len(body) > 0
    raise TimeoutError(f"mail relay never became ready after {turn} renders")


def failing_terminal(envelope: Output) -> Output:
    """terminal 1.1.0-failing: an undeclared host call is refused, and it does not cope."""
    raise RuntimeError(f"terminal {envelope['action']}: host call inventory.search refused "
                       "(not granted); unhandled")


class InProcessPlugin:
    """Stands where the runtime's Plugin stands: `call_raw(data, context)` -> CallResult."""

    limits = None

    def __init__(self, plugin_id: str, version: str, run: Callable[[Output], Output]) -> None:
        self.plugin_id, self.version, self.run = plugin_id, version, run

    def call_raw(self, data: bytes, context: Any = None) -> CallResult:
        started = time.perf_counter()
        output = self.run(json.loads(data))
        stats = CallStats(self.plugin_id, self.version, 0, 0,
                          (time.perf_counter() - started) * 1000, 0)
        return CallResult(output, stats)


def in_process_plugins() -> dict[tuple[str, str], Callable[[Output], Output]]:
    return {("softphone", "1.1.0-leaky"): LeakySoftphone(),
            ("mail", "1.1.0-spinning"): spinning_mail,
            ("terminal", "1.1.0-failing"): failing_terminal}


def legacy_app() -> Any:
    """The CMS app whose registry hands out in-process Python for the faulty versions."""
    app = create_app()
    registry = app.extensions["cms"].plugins
    sandboxed = registry.plugin
    legacy = in_process_plugins()

    def plugin(built: Any, grants: frozenset[str]) -> Any:
        run = legacy.get((built.manifest.id, built.manifest.version))
        if run is None:
            return sandboxed(built, grants)
        return InProcessPlugin(built.manifest.id, built.manifest.version, run)

    registry.plugin = plugin
    logger.warning("control run: %s run in-process without a sandbox",
                   ", ".join(f"{p} {v}" for p, v in legacy))
    return app


app = legacy_app()
