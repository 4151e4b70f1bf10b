"""The detectors that watch the platform rather than one plugin: a spike of failed logins (through
the real login form) and a worker whose resident memory grows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from cms.extensions import db
from tests.conftest import Browser, Personas, create_personas
from tests.monitoring.conftest import alerts_of, bundled, monitor_settings, until_alert


@pytest.fixture
def sensitive(tmp_path: Path) -> Iterator[Flask]:
    settings = monitor_settings(login_failures=8, worker_rss_growth_mib=48,
                                worker_sample_s=0.1)
    yield from bundled(tmp_path, monitoring=settings, login_max_failures_per_ip=1000)


def test_a_spike_of_failed_logins_raises_one_alert(sensitive: Flask) -> None:
    personas: Personas = create_personas(sensitive)
    browser = Browser(sensitive.test_client())
    usernames = iter(f"guess{n}" for n in range(1000))
    alert = until_alert(sensitive, lambda: browser.login(next(usernames), "123456"),
                        "login_failures", deadline_s=60)
    assert alert.plugin_id is None and alert.severity == "warning"
    assert "failed logins in the last 60 s" in alert.message and "auth.login.failure" in alert.message
    for _ in range(10):
        browser.login(next(usernames), "123456")
    assert len(alerts_of(sensitive, "login_failures")) == 1
    assert browser.login(personas.admin).status_code == 302  # the real admin still gets in


def test_a_worker_whose_memory_grows_raises_an_alert(sensitive: Flask) -> None:
    monitor: Any = sensitive.extensions["monitoring"]
    with sensitive.app_context():
        monitor.tick(lambda: Session(db.engine))
        ballast = bytearray(96 * 1024 * 1024)  # touched: resident, not just reserved
        for i in range(0, len(ballast), 4096):
            ballast[i] = 1
        deadline = time.monotonic() + 30
        while not alerts_of(sensitive, "worker_rss") and time.monotonic() < deadline:
            time.sleep(0.15)
            monitor.tick(lambda: Session(db.engine))
        del ballast
    alert = alerts_of(sensitive, "worker_rss")[0]
    assert alert.severity == "warning" and "resident memory grew" in alert.message
    assert alert.subject.startswith("worker ") and alert.details["worker"].endswith(
        f":{__import__('os').getpid()}")
