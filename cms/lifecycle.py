"""Per-process start-up hooks, called from Gunicorn's post_fork.

Anything holding threads, sockets or native engines must be created here (after fork), not in the
master: database pools are reset so no connection is shared between processes. The plugin
runtime adds its engine and epoch ticker here.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

logger = logging.getLogger(__name__)

_worker_start_hooks: list[Callable[[int], None]] = []


def add_worker_start_hook(hook: Callable[[int], None]) -> None:
    """Run `hook(pid)` in every worker right after it is forked."""
    _worker_start_hooks.append(hook)


def on_worker_start(pid: int) -> None:
    """Called once per worker after fork."""
    from cms.extensions import db

    # With preload_app the master may have opened pooled connections; never share them.
    try:
        engines = db.engines  # type: ignore[attr-defined]
        for engine in engines.values():
            engine.dispose(close=False)
    except RuntimeError:
        pass  # no app context yet: nothing was opened before fork
    for hook in list(_worker_start_hooks):
        hook(pid)
    logger.info("worker %s started", pid)


def on_worker_ready(app: Any) -> None:
    """Called once per worker after it has loaded the app: start the plugin engine and ticker,
    and the flag watcher.

    Works with and without `preload_app`: create_app starts no threads, so the engine always
    belongs to the worker that runs it.
    """
    runtime = app.extensions["cms"].runtime
    runtime.engines.get()
    monitor = app.extensions["monitoring"]
    with app.app_context():
        monitor.ensure_plugin_series()  # every installed version's series, at zero
    monitor.start()  # this worker's thread for metrics and detectors
    if app.extensions["cms"].courier is not None:
        app.extensions["cms"].courier.start()  # this worker's share of the outbox
    # The flag watcher (Redis subscriber + database version poll) is per worker, like the engine.
    app.extensions["cms"].flags.start()
    logger.info("plugin engine ready in worker %s (ticker alive: %s)", runtime.engines.generation,
                runtime.engines.ticker_alive())


def on_worker_exit(app: Any) -> None:
    """Called once per worker as it stops: let its courier finish the mail in hand."""
    courier = getattr(app, "extensions", {}).get("cms")
    if courier is not None and courier.courier is not None:
        courier.courier.stop()
