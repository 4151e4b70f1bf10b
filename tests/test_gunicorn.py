"""Gunicorn with the project's config: every worker has its own plugin engine and live ticker,
with and without preload_app."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("preload", ["0", "1"], ids=["no-preload", "preload"])
def test_every_worker_runs_its_own_engine_and_ticker(tmp_path: Path, preload: str) -> None:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
           "GUNICORN_PRELOAD": preload, "GUNICORN_ACCESS_LOG": "/dev/null",
           "CMS_INSTANCE_PATH": str(tmp_path), "CMS_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "CMS_REDIS_URL": "", "CMS_METRICS_ALLOW": "127.0.0.1"}  # /healthz details
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    reports: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + 60
        while len(reports) < 20 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                    reports.append(json.load(answer)["plugin_runtime"])
            except OSError:
                time.sleep(0.2)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert len(reports) == 20, output
    for report in reports:
        assert report["ticker_alive"] is True, report
        assert report["engine_pid"] == report["pid"], report
    assert output.count("plugin engine ready in worker") == 2, output
