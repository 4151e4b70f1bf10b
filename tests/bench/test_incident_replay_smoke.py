"""The incident replay end to end in its tiny mode: real Gunicorn, PostgreSQL, a Redis of its own
and locust; the faulty versions are released under load and nothing an agent needs breaks.

No timing is asserted: the machine is shared. Only what must hold however slow it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_DSN, require

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEYS = {"failed_logins", "worker_deaths", "worker_timeouts", "requests_lost", "p99_login_ratio",
        "rss_growth_mb", "quarantine_s", "first_alert_s", "false_alarms"}


@pytest.mark.postgres
@pytest.mark.redis
def test_the_smoke_replay_releases_the_faulty_versions_and_no_login_or_worker_is_lost(
        postgres_dsn: str, tmp_path: Path) -> None:
    require((BIN / "locust").exists(), "locust (pip install -e '.[dev]')")
    require(Path("/usr/bin/redis-server").exists() or (BIN / "redis-server").exists(),
            "redis-server")
    database = POSTGRES_DSN.rsplit("/", 1)[0] + "/cms_replay_smoke"
    done = subprocess.run(
        [str(BIN / "python"), "bench/incident_replay.py", "--smoke", "--json",
         "--database-url", database, "--keep-logs", str(tmp_path / "logs")],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert KEYS <= set(result), sorted(KEYS - set(result))
    assert result["mode"] == "smoke" and result["control"] is None
    sandbox = result["sandbox"]
    assert sandbox["login_attempts"] > 0 and sandbox["requests_sent"] > 0
    assert result["failed_logins"] == 0, sandbox["phases"]
    assert result["worker_deaths"] == 0 and result["worker_timeouts"] == 0
    assert result["requests_lost"] == 0
    # No healthy version is quarantined or critically alerted.
    assert result["false_alarms"] == 0, sandbox["false_alarm_list"]
    # Every faulty version went out to agents (the release went through the admin API).
    assert set(sandbox["quarantine_s_by_version"]) == {
        "softphone 1.1.0-leaky", "mail 1.1.0-spinning", "terminal 1.1.0-failing"}
