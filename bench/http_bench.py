"""HTTP benchmark: the CMS under Gunicorn against a bare Flask app under the same settings.

Run manually (not part of the test suite):

    .venv/bin/python bench/http_bench.py [--workers 4] [--duration 15] [--write]

It creates (if needed), migrates and seeds the PostgreSQL database `cms_bench` (12,000 agents,
100,000 clients), starts two Gunicorn servers on 127.0.0.1 with the project's gunicorn.conf.py
(access log off), measures four endpoints with wrk, prints a Markdown table, and with --write
rewrites docs/benchmarks.md. Every server it starts is stopped on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, quote_plus, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wrk_scripts  # noqa: E402  (sibling modules; bench/ is not a package)
from bench_report import (  # noqa: E402
    Result,
    document,
    load_average,
    ratios,
    table,
    with_kept_notes,
)

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE = "postgresql://127.0.0.1/cms_bench"
DEFAULT_PASSWORD = "demo-travel-2026"
# Realistic search input: name prefixes (some with accents), a full name, an e-mail, a phone.
SEARCH_TERMS = ["mül", "gar", "smi", "o'b", "jo", "sch", "ng", "pat", "fern", "kow", "dub",
                "maria", "jose gar", "lefe", "+44 20", "olivia."]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE,
                        help=f"database to benchmark (default {DEFAULT_DATABASE}, created if missing)")
    parser.add_argument("--workers", type=int, default=4, help="Gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--connections", type=int, default=0,
        help="wrk connections (default: one per Gunicorn worker, the most sync workers serve at once)",
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per endpoint (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds before each run")
    parser.add_argument("--max-requests", type=int, default=None,
                        help="override GUNICORN_MAX_REQUESTS for both servers (0: never recycle "
                             "workers); default: the project's setting")
    parser.add_argument("--agencies", type=int, default=50)
    parser.add_argument("--agents", type=int, default=12_000)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="seeded agents' password")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.connections == 0:
        args.connections = max(args.workers, args.threads)
    for name in ("workers", "threads", "connections", "duration"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- database ----------------------------------------------------------------------------------

def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` when it does not exist yet."""
    if not url.startswith(("postgresql://", "postgres://")):
        return
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5):
            return
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise
    name = urlsplit(url).path.lstrip("/")
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    log(f"creating database {name}")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def flask_cli(env: dict[str, str], *args: str, timeout: int) -> None:
    command = [str(VENV_BIN / "flask"), "--app", "cms", *args]
    log("$ " + shlex.join(command[1:]))
    subprocess.run(command, env=env, cwd=REPO, check=True, timeout=timeout)


def seeded_counts(url: str) -> tuple[int, int]:
    """(seeded agents, clients) currently in the database."""
    from sqlalchemy import create_engine, text

    from cms.config import normalize_database_url

    engine = create_engine(normalize_database_url(url))
    try:
        with engine.connect() as conn:
            agents = conn.scalar(text("SELECT count(*) FROM users WHERE username LIKE 'agent%'"))
            clients = conn.scalar(text("SELECT count(*) FROM clients"))
    finally:
        engine.dispose()
    return int(agents or 0), int(clients or 0)


def prepare_database(args: argparse.Namespace, env: dict[str, str]) -> str | None:
    """Create, migrate and seed when needed; return the seed command line when one was run."""
    ensure_database(args.database_url)
    flask_cli(env, "db", "upgrade", timeout=300)
    agents, clients = seeded_counts(args.database_url)
    if agents >= args.agents and clients >= args.clients:
        log(f"already seeded: {agents} agents, {clients} clients")
        return None
    seed_args = ["seed", "--agencies", str(args.agencies), "--agents", str(args.agents),
                 "--clients", str(args.clients)]
    started = time.perf_counter()
    flask_cli(env, *seed_args, timeout=3600)
    log(f"seeded in {time.perf_counter() - started:.0f} s")
    return "flask --app cms " + shlex.join(seed_args)


# --- servers -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_gunicorn_config(directory: Path) -> Path:
    """The project's gunicorn.conf.py with only the access log switched off."""
    path = directory / "gunicorn_bench.conf.py"
    path.write_text(
        "import runpy\n"
        f"_project = runpy.run_path({str(REPO / 'gunicorn.conf.py')!r})\n"
        "globals().update({k: v for k, v in _project.items() if not k.startswith('__')})\n"
        "accesslog = None\n"
    )
    return path


@contextlib.contextmanager
def gunicorn(name: str, config: Path, workers: int, env: dict[str, str], log_dir: Path,
             app: str | None = None) -> Iterator[int]:
    """Run Gunicorn on a free 127.0.0.1 port; yield the port; always stop it afterwards."""
    port = free_port()
    command = [str(VENV_BIN / "gunicorn"), "-c", str(config), "--workers", str(workers),
               "--bind", f"127.0.0.1:{port}"] + ([app] if app else [])
    log_file = open(log_dir / f"{name}.log", "wb")
    log(f"starting {name}: " + shlex.join(command[1:]))
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log_file,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_serving(port, "/" if app else "/login", process, log_dir / f"{name}.log")
        yield port
    finally:
        stop(process)
        log_file.close()


def wait_until_serving(port: int, path: str, process: subprocess.Popen[bytes], log_path: Path,
                       timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early; see {log_path}:\n{log_path.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if request(port, "GET", path)[0] == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not answering on port {port} after {timeout:.0f} s; see {log_path}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=25)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- HTTP helpers ------------------------------------------------------------------------------

def request(port: int, method: str, path: str, body: str | None = None,
            cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    """One request to 127.0.0.1:`port`; returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def session_cookie(headers: dict[str, str]) -> str:
    match = re.search(r"(cms_session=[^;]+)", headers.get("Set-Cookie", ""))
    if not match:
        raise RuntimeError("no cms_session cookie in the response")
    return match.group(1)


def anonymous_login_form(port: int) -> tuple[str, str]:
    """(cookie, csrf token) from GET /login."""
    status, headers, html = request(port, "GET", "/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    if status != 200 or not token:
        raise RuntimeError(f"GET /login gave {status} without a CSRF token")
    return session_cookie(headers), token.group(1)


def login_body(token: str, username: str, password: str) -> str:
    return f"csrf_token={quote_plus(token)}&username={quote_plus(username)}&password={quote_plus(password)}"


def logged_in_cookie(port: int, username: str, password: str) -> str:
    cookie, token = anonymous_login_form(port)
    status, headers, _ = request(port, "POST", "/login", login_body(token, username, password), cookie)
    if status != 302:
        raise RuntimeError(f"login as {username} failed with {status}")
    return session_cookie(headers)


def check(port: int, path: str, cookie: str) -> None:
    status, _, html = request(port, "GET", path, cookie=cookie)
    if status != 200 or 'name="password"' in html:
        raise RuntimeError(f"GET {path} as a logged-in agent gave {status} (not the page)")


# --- wrk ---------------------------------------------------------------------------------------

_BENCH_LINE = re.compile(r"^BENCH (.*)$", re.MULTILINE)


def wrk(key: str, name: str, port: int, path: str, script: str, args: argparse.Namespace, work_dir: Path,
        duration: int, expected_status: int = 200) -> Result:
    """Run wrk for `duration` seconds with `script`; return its numbers. Errors count socket
    errors and answers other than `expected_status` (wrk's own status count, >= 400, too when
    a success is expected)."""
    script_path = work_dir / f"{key}.lua"
    script_path.write_text(script)
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s",
               "--timeout", "10s", "-s", str(script_path), f"http://127.0.0.1:{port}{path}"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    match = _BENCH_LINE.search(completed.stdout)
    if completed.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout}{completed.stderr}")
    values = dict(item.split("=") for item in match.group(1).split())
    n = {key: int(value) for key, value in values.items()}
    return Result(
        key=key,
        name=name,
        requests=n["requests"],
        seconds=n["duration_us"] / 1e6,
        errors=n["socket_errors"] + (n["unexpected"] if expected_status >= 400
                                     else max(n["status_errors"], n["unexpected"])),
        p50_ms=n["p50_us"] / 1000,
        p95_ms=n["p95_us"] / 1000,
        p99_ms=n["p99_us"] / 1000,
    )


def measure(key: str, name: str, port: int, path: str, script: str, args: argparse.Namespace,
            work_dir: Path) -> Result:
    if args.warmup:
        wrk(key, f"{name} warm-up", port, path, script, args, work_dir, args.warmup)
    log(f"measuring {name} for {args.duration} s")
    result = wrk(key, name, port, path, script, args, work_dir, args.duration)
    log(f"{name}: {result.rps:.1f} req/s, p95 {result.p95_ms:.1f} ms, {result.errors} errors")
    return result


def run_benchmarks(args: argparse.Namespace, env: dict[str, str], work_dir: Path) -> list[Result]:
    config = write_gunicorn_config(work_dir)
    results = []
    with gunicorn("hello", config, args.workers, env, work_dir, app="bench.hello_app:app") as port:
        results.append(measure("hello", "hello app: GET /", port, "/", wrk_scripts.get_script(), args, work_dir))
    with gunicorn("cms", config, args.workers, env, work_dir) as port:
        cookie, token = anonymous_login_form(port)
        login = wrk_scripts.login_script(cookie, quote_plus(token), quote_plus(args.password),
                                         args.agents)
        results.append(measure("login", "POST /login", port, "/login", login, args, work_dir))
        agent_cookie = logged_in_cookie(port, "agent00001", args.password)
        check(port, "/", agent_cookie)
        results.append(measure("dashboard", "GET / (dashboard)", port, "/",
                               wrk_scripts.get_script(200, agent_cookie), args, work_dir))
        paths = [f"/clients?q={quote(term)}" for term in SEARCH_TERMS]
        check(port, paths[0], agent_cookie)
        results.append(measure("search", "GET /clients?q= (search)", port, paths[0],
                               wrk_scripts.rotating_get_script(paths, agent_cookie), args, work_dir))
    return results


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = ".venv/bin/python bench/http_bench.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    signal.signal(signal.SIGTERM, _interrupt)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="cms-bench-") as tmp:
        work_dir = Path(tmp)
        env = {**os.environ, "CMS_DATABASE_URL": args.database_url, "CMS_ENV": "production",
               "CMS_SECRET_KEY": secrets.token_urlsafe(32), "CMS_SECURE_COOKIES": "false",
               "CMS_INSTANCE_PATH": str(work_dir / "instance"), "CMS_DEMO_PASSWORD": args.password,
               "GUNICORN_LOG_LEVEL": "warning", "PYTHONPATH": str(REPO)}
        if args.max_requests is not None:
            env["GUNICORN_MAX_REQUESTS"] = str(args.max_requests)
        seed_command = prepare_database(args, env)
        results = run_benchmarks(args, env, work_dir)
    print(table(results))
    print()
    print(ratios(results))
    if args.write:
        path = REPO / "docs" / "benchmarks.md"
        path.parent.mkdir(exist_ok=True)
        previous = path.read_text() if path.exists() else None
        generated = document(results, args, command.strip(), seed_command, SEARCH_TERMS,
                             load_before)
        path.write_text(with_kept_notes(generated, previous))
        log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        sys.exit(130)
