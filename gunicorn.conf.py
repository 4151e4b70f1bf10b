"""Gunicorn settings for the CMS. Every value can be overridden on the command line.

Reads PORT and WEB_CONCURRENCY like the app does; `post_fork` is where per-worker resources start
(the plugin runtime's engine and epoch ticker must be created after fork, never in the master).
"""

from __future__ import annotations

import multiprocessing
import os

wsgi_app = "cms:create_app()"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{int(os.environ.get('PORT', '8000'))}"
workers = int(os.environ.get("WEB_CONCURRENCY", str(max(2, multiprocessing.cpu_count()))))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so no slow growth can accumulate; jitter avoids all restarting at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
# Heartbeat files on tmpfs: a worker blocked on a slow disk must not look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
preload_app = os.environ.get("GUNICORN_PRELOAD", "") in {"1", "true", "yes"}
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s pid=%(p)s'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# prometheus-client's multiprocess mode: every worker writes its metrics to files in this folder
# and /metrics adds them up. It must be set before any process imports prometheus_client, so here,
# at config load in the master (before preload_app loads the app). tmpfs keeps the writes off disk.
_default_metrics_dir = os.path.join("/dev/shm" if os.path.isdir("/dev/shm") else "/tmp",
                                    f"cms-metrics-{bind.rsplit(':', 1)[1]}")
metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _default_metrics_dir)
if os.environ.get("CMS_METRICS_DIR_OWNER") != str(os.getpid()):
    # A new server run, not a reload (HUP) of this master: start with no metric files left over.
    os.environ["CMS_METRICS_DIR_OWNER"] = str(os.getpid())
    from cms.monitoring.metrics import reset_multiprocess_dir

    reset_multiprocess_dir(metrics_dir)


def on_exit(server):  # type: ignore[no-untyped-def]
    """Remove the default metrics folder when the server stops (a configured one is left)."""
    if metrics_dir == _default_metrics_dir:
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    """Count the workers started to replace one that exited (the first `workers` are not)."""
    if worker.age > server.cfg.workers:
        from cms.monitoring.metrics import count_worker_restart

        count_worker_restart()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker is gone: drop its live gauges (RSS) from the metrics; its counters stay counted."""
    from cms.monitoring.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    """Start per-worker resources: nothing inherited from the master is shared across workers."""
    from cms.lifecycle import on_worker_start

    on_worker_start(worker.pid)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """The worker has loaded the app: start its plugin engine and epoch ticker."""
    from cms.lifecycle import on_worker_ready

    on_worker_ready(worker.wsgi)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """The worker is stopping (max_requests, a reload, shutdown): its courier finishes the mail
    in hand and hands back nothing half-sent."""
    from cms.lifecycle import on_worker_exit

    on_worker_exit(worker.wsgi)


def worker_abort(worker):  # type: ignore[no-untyped-def]
    worker.log.warning("worker %s aborted (timeout); it will be replaced", worker.pid)
