"""Two app instances (separate Gunicorn processes, two workers each) sharing PostgreSQL and a
Redis server of their own: a kill switch flipped on one is honoured by the other; with Redis
paused and then gone, requests keep flowing, flags keep their values, and a change still arrives
through the database."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis as redis_lib

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "two-instances-2026"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until `check()` held, or None at the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


class Agent:
    """A browser-like HTTP client with its own cookies (a login session)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def login(self, username: str) -> None:
        _, page = self.get("/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token
        data = urllib.parse.urlencode({"username": username, "password": PASSWORD,
                                       "csrf_token": token.group(1)}).encode()
        with self.opener.open(self.base + "/login", data=data, timeout=10) as answer:
            assert answer.status == 200 and "/login" not in answer.url


def put_flag(base: str, token: str, key: str, enabled: bool) -> int:
    request = urllib.request.Request(
        f"{base}/api/admin/flags/{key}", method="PUT",
        data=json.dumps({"enabled": enabled, "rollout_percent": 100, "reason": "two-instance test"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A Redis server only this test uses (it is paused and killed on purpose)."""
    server = shutil.which("redis-server")
    require(server is not None, "redis-server")
    port = free_port()
    process = subprocess.Popen([str(server), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    client = redis_lib.Redis(port=port, socket_timeout=1)
    assert wait_until(lambda: _pings(client), 10) is not None
    yield process, port
    process.kill()
    process.wait(timeout=10)


def _pings(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.RedisError:
        return False


@pytest.fixture
def instances(tmp_path: Path, postgres_schema_url: str,
              own_redis: tuple[subprocess.Popen[str], int]) -> Iterator[dict[str, Any]]:
    """Migrate, install the bundled plugins, add people; start instances A and B."""
    env = {**os.environ, "CMS_DATABASE_URL": postgres_schema_url,
           "CMS_REDIS_URL": f"redis://127.0.0.1:{own_redis[1]}/0", "CMS_INSTANCE_PATH": str(tmp_path),
           "CMS_SECRET_KEY": "two-instances-secret", "CMS_ENV": "development", "HOST": "127.0.0.1",
           "WEB_CONCURRENCY": "2", "GUNICORN_ACCESS_LOG": "/dev/null", "CMS_FLAG_POLL_SECONDS": "1"}
    flask = [str(BIN / "flask"), "--app", "cms"]
    for command in (["db", "upgrade"], ["plugins", "sync"], ["seed", "--agencies", "1", "--agents", "2",
                                                              "--clients", "5", "--password", PASSWORD]):
        done = subprocess.run(flask + command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(flask + ["token", "create", "demo.admin"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    token = re.search(r"cms_\S+", done.stdout)
    assert token, done.stdout
    servers, bases = [], []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=ROOT,
                                            env={**env, "PORT": str(port)}, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            assert wait_until(lambda b=base: _healthy(b), 60) is not None
        yield {"a": bases[0], "b": bases[1], "token": token.group(0), "redis": own_redis[0],
               "redis_port": own_redis[1]}
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_a_kill_switch_reaches_the_other_instance_and_survives_redis_trouble(
        instances: dict[str, Any]) -> None:
    agent = Agent(instances["b"])
    agent.login("demo.agent")
    _, listing = agent.get("/clients?q=")
    first = re.search(r'href="(/clients/\d+)"', listing)
    assert first, listing[:500]
    client_page = first.group(1)

    def terminal_shown() -> bool:
        status, page = agent.get(client_page)
        assert status == 200
        return 'data-plugin="terminal"' in page

    def steadily(expected: bool) -> Callable[[], bool]:
        # Both of B's workers must agree: several requests in a row.
        return lambda: all(terminal_shown() is expected for _ in range(6))

    assert terminal_shown()
    assert put_flag(instances["a"], instances["token"], "plugin.terminal", False) == 200
    took = wait_until(steadily(False), 10)
    assert took is not None, "instance B never honoured the kill switch flipped on A"

    # Redis paused: B's requests keep being answered, with the last flag values.
    pauser = redis_lib.Redis(port=instances["redis_port"], socket_timeout=5)
    pauser.execute_command("CLIENT", "PAUSE", "3000", "ALL")
    answered = [terminal_shown() for _ in range(10)]
    assert answered == [False] * 10

    # Redis gone: still answered, still the last values; a change arrives through the database.
    instances["redis"].kill()
    instances["redis"].wait(timeout=10)
    assert [terminal_shown() for _ in range(10)] == [False] * 10
    assert put_flag(instances["a"], instances["token"], "plugin.terminal", True) == 200
    assert wait_until(steadily(True), 20) is not None, "without Redis, B never saw the change"
