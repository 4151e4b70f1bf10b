"""prometheus-client in multiprocess mode under the project's Gunicorn config: /metrics adds up
every worker, a killed worker's counts stay while its live gauges go, and the replacement is
counted as a restart; each worker's monitoring thread reports without any request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.monitoring.test_metrics import samples, value
from tests.test_gunicorn import _free_port

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


def _pids(text: str) -> set[str]:
    return {labels["pid"] for name, labels, _ in samples(text)
            if name == "cms_worker_resident_memory_bytes"}


def _wait_for(check: object, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_metrics_add_up_across_workers_and_survive_a_worker_restart(tmp_path: Path) -> None:
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2",
           "GUNICORN_ACCESS_LOG": "/dev/null", "CMS_INSTANCE_PATH": str(tmp_path),
           "CMS_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "CMS_REDIS_URL": "",
           "CMS_METRICS_ALLOW": "127.0.0.1/32", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
           "CMS_MONITOR_WORKER_SAMPLE_SECONDS": "0.5"}
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from a previous run")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        # Each worker's monitoring thread samples its RSS with no request to it.
        _wait_for(lambda: len(_pids(_get(f"{base}/metrics"))) == 2)
        assert not (metrics_dir / "counter_999999.db").exists()  # cleaned at start
        for _ in range(40):
            _get(f"{base}/healthz")
        text = _get(f"{base}/metrics")
        assert value(text, "cms_http_requests_total", route="/healthz", status="200") == 40
        before = _pids(text)
        victim = int(sorted(before)[0])
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: (lambda pids: len(pids) == 2 and str(victim) not in pids)(
            _pids(_get(f"{base}/metrics"))))
        text = _get(f"{base}/metrics")
        assert value(text, "cms_worker_restarts_total") == 1
        # The dead worker's requests still count; its RSS gauge is gone.
        assert value(text, "cms_http_requests_total", route="/healthz", status="200") == 40
        assert str(victim) not in _pids(text)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert "Traceback" not in output, output
