"""Processes the benchmarks start on 127.0.0.1, each stopped on exit even on failure: a Redis
server of their own, Gunicorn (the project's gunicorn.conf.py with the logs a benchmark reads),
locust, a webhook receiver, and a sampler of Gunicorn workers' RSS.

Every child runs in its own process group; `stop_group` ends the group (SIGTERM, then SIGKILL),
and an atexit hook ends any group still registered, so nothing outlives the benchmark.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
#: The project's access log format plus the user agent, so the load's requests can be counted.
ACCESS_LOG_FORMAT = ('%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s pid=%(p)s '
                     'probe=%({x-probe}i)s ua="%(a)s" t=%(t)s')

_groups: dict[int, subprocess.Popen[bytes]] = {}


def log(message: str) -> None:
    print(f"[replay] {message}", file=sys.stderr, flush=True)


def _stop_all() -> None:
    for process in list(_groups.values()):
        stop_group(process, grace=5)


atexit.register(_stop_all)


def start_group(command: list[str], env: dict[str, str], log_path: Path,
                cwd: Path = REPO) -> subprocess.Popen[bytes]:
    """Start `command` in a new process group with stdout and stderr into `log_path`."""
    with open(log_path, "ab") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    _groups[process.pid] = process
    return process


def stop_group(process: subprocess.Popen[bytes], grace: float = 25) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; forget it."""
    try:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # Children that outlived their parent (a worker being replaced) go with the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    finally:
        _groups.pop(process.pid, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return True
        time.sleep(step)
    return False


def http_status(port: int, path: str, timeout: float = 3) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "cms-replay-probe"})
        response = conn.getresponse()
        response.read()
        return int(response.status)
    finally:
        conn.close()


# Redis -----------------------------------------------------------------------------------------

@contextlib.contextmanager
def redis_server(work_dir: Path) -> Iterator[str]:
    """A Redis of the benchmark's own on a free loopback port (no pub/sub or keys shared with
    anything else on the machine); yields its URL. Without redis-server, the machine's Redis
    (db 12, CMS_BENCH_REDIS_URL to choose another)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield os.environ.get("CMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
        return
    port = free_port()
    process = start_group([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(work_dir)], dict(os.environ),
                          work_dir / "redis.log", cwd=work_dir)
    try:
        def pong() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        if not wait_for(pong, 10, 0.05):
            raise RuntimeError(f"redis-server did not start; see {work_dir / 'redis.log'}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_group(process, grace=5)


# Gunicorn --------------------------------------------------------------------------------------

def gunicorn_config(work_dir: Path, name: str, access_log: Path | None) -> Path:
    """The project's gunicorn.conf.py, with the access log to `access_log` (or off) in a format
    that names the user agent and the probe header, and the log level at info (worker boots)."""
    path = work_dir / f"gunicorn_{name}.conf.py"
    path.write_text(
        "import runpy\n"
        f"_project = runpy.run_path({str(REPO / 'gunicorn.conf.py')!r})\n"
        "globals().update({k: v for k, v in _project.items() if not k.startswith('__')})\n"
        f"accesslog = {str(access_log) if access_log else None!r}\n"
        f"access_log_format = {ACCESS_LOG_FORMAT!r}\n"
        "loglevel = 'info'\n"
    )
    return path


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    access_log: Path | None
    workers: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def gunicorn(name: str, work_dir: Path, env: dict[str, str], workers: int,
             app: str | None = None, access_log: bool = True,
             timeout: int | None = None) -> Iterator[Server]:
    """Gunicorn on a free 127.0.0.1 port with the project's settings; stopped on exit."""
    port = free_port()
    access = work_dir / f"{name}.access.log" if access_log else None
    config = gunicorn_config(work_dir, name, access)
    command = [str(VENV_BIN / "gunicorn"), "-c", str(config), "--workers", str(workers),
               "--bind", f"127.0.0.1:{port}"]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    if app:
        command.append(app)
    log_path = work_dir / f"{name}.log"
    # PORT names the server's metrics folder (/dev/shm/cms-metrics-<port>): never another's.
    process = start_group(command, {**env, "PORT": str(port)}, log_path)
    server = Server(name, port, process, log_path, access, workers)
    try:
        log(f"{name}: gunicorn on 127.0.0.1:{port}, {workers} workers"
            + (f", app {app}" if app else ""))
        ready = wait_for(lambda: process.poll() is None and http_status(port, "/healthz") == 200, 90)
        if not ready:
            raise RuntimeError(f"{name} did not become healthy; see {log_path}:\n"
                               f"{server.log_text()[-3000:]}")
        wait_for(lambda: len(worker_pids(process.pid)) >= workers, 30)
        yield server
    finally:
        stop_group(process)


def worker_pids(master: int) -> list[int]:
    """The pids of `master`'s children (Gunicorn's workers)."""
    children = Path(f"/proc/{master}/task/{master}/children")
    with contextlib.suppress(OSError):
        return [int(p) for p in children.read_text().split()]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                found.append(int(stat.parent.name))
    return found


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
        return int(match.group(1)) if match else None
    return None


class RssSampler(threading.Thread):
    """Samples every worker's VmRSS each `interval` s until stopped (or `limit_s` passes)."""

    def __init__(self, master: int, interval: float = 1.0, limit_s: float = 3600) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.master, self.interval, self.limit_s = master, interval, limit_s
        self.samples: list[tuple[float, int, float]] = []  # (epoch s, pid, MiB)
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            now = time.time()
            for pid in worker_pids(self.master):
                kib = rss_kib(pid)
                if kib is not None:
                    self.samples.append((now, pid, kib / 1024))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


# Webhook receiver ------------------------------------------------------------------------------

@dataclass
class Webhooks:
    """Alert webhooks received on 127.0.0.1: (epoch s, payload)."""

    port: int = 0
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"


@contextlib.contextmanager
def webhook_receiver() -> Iterator[Webhooks]:
    hooks = Webhooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 1_000_000))
            with contextlib.suppress(ValueError):
                hooks.received.append((time.time(), json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hooks.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    try:
        yield hooks
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
