"""`cms-plugin dev`: the preview app over a scaffolded C plugin (panels through the CMS templates,
forms, call stats, faults, rebuilds), its in-memory host against the server's host ops, and the
command itself serving over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cms.audit import Actor
from cms.extensions import db
from cms.models import User
from cms.plugins import hostops, kv
from cms.runtime import CallContext, HostOpError
from cms.security import CONTENT_SECURITY_POLICY
from plugin_sdk.cli import main
from plugin_sdk.devserver import DevHost, DevSession, World, create_app
from plugin_sdk.devserver.host import CallRecord
from plugin_sdk.project import scaffold
from plugin_sdk.toolchain import zig_available
from tests.conftest import Personas, require

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    require(zig_available(), "the ziglang compiler")
    return scaffold("Hello World", "c", tmp_path)


@pytest.fixture
def session(folder: Path, tmp_path: Path) -> Iterator[DevSession]:
    dev = DevSession(folder, tmp_path / "artifacts")
    yield dev
    dev.close()


@pytest.fixture
def preview(session: DevSession) -> FlaskClient:
    return create_app(session).test_client()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    stat = path.stat()  # a save in the same mtime tick still changes the stamp
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def _post_greet(client: FlaskClient, name: str, partial: bool = True) -> Any:
    return client.post("/plugins/hello-world/actions/greet",
                       data={"csrf_token": client.application.config["DEV_FORM_TOKEN"], "__slot": "dashboard.widget",
                             "name": name}, headers={"X-Partial": "1"} if partial else {})


def test_the_preview_renders_every_panel_with_the_cms_templates(preview: FlaskClient,
                                                               session: DevSession) -> None:
    page = preview.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    widget = html[html.index('data-slot="dashboard.widget"'):]
    assert 'class="plugin-panel"' in widget and 'data-plugin="hello-world"' in widget
    assert '<form class="pb-form" method="post" action="/plugins/hello-world/actions/greet"' in widget
    assert '<span class="pb-badge tone-info">0</span>' in widget
    assert f'name="csrf_token" value="{preview.application.config["DEV_FORM_TOKEN"]}"' in widget
    for slot in ("agent.toolbar", "client.sidebar", "page"):  # the template declares none
        assert f"No panel in {slot}" in html
    assert '/static/css/app.css' in html and '/static/js/app.js' in html
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None  # the CSP allows no inline script
    assert preview.get("/static/js/app.js").status_code == 200
    assert preview.get("/__dev/static/devserver.js").status_code == 200


def test_a_timer_block_renders_with_the_cms_filters(preview: FlaskClient, session: DevSession,
                                                    folder: Path) -> None:
    _edit(folder / "src/main.c", 'cms_ui_heading(ctx, "Hello World", 2);',
          'cms_ui_heading(ctx, "Hello World", 2); cms_ui_timer(ctx, "Open", "2020-01-01T00:00:00Z");')
    assert session.poll() and session.build.error is None
    html = preview.get("/").get_data(as_text=True)
    timer = re.search(r'<p class="pb-timer" role="timer"><span>Open</span> <time '
                      r'datetime="2020-01-01T00:00:00Z" data-timer="(\d+)">', html)
    assert timer is not None and int(timer.group(1)) > 365 * 24 * 3600


def test_a_form_post_runs_the_action_and_keeps_its_writes(preview: FlaskClient) -> None:
    answer = _post_greet(preview, "Grace")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert '<div class="pb-alert tone-success" role="status">Hello, Grace!</div>' in html
    assert "kv.set" in html and "data-dev-call" in html
    assert '<pre class="dev-log" aria-label="Plugin log">info: greeted Grace (count 1)' in html
    assert '<span class="pb-badge tone-info">1</span>' in preview.get("/").get_data(as_text=True)
    full = _post_greet(preview, "Ada", partial=False)  # without script: a page with the result
    assert full.status_code == 200 and "Hello, Ada!" in full.get_data(as_text=True)
    assert '<span class="pb-badge tone-info">2</span>' in preview.get("/").get_data(as_text=True)


def test_an_answer_that_is_not_ok_keeps_nothing(preview: FlaskClient, session: DevSession) -> None:
    before = session.host_state()
    answer = _post_greet(preview, "   ")  # passes the schema, refused by the plugin
    assert answer.status_code == 422
    assert "Name must not be empty" in answer.get_data(as_text=True)
    assert session.host_state() == before
    invalid = _post_greet(preview, "")  # refused by the schema before any call
    assert invalid.status_code == 422 and "Params of greet" in invalid.get_data(as_text=True)


def test_a_post_without_the_pages_token_is_refused(preview: FlaskClient) -> None:
    answer = preview.post("/plugins/hello-world/actions/greet", data={"name": "Eve"})
    assert answer.status_code == 400


def test_each_call_shows_fuel_memory_time_and_host_calls(preview: FlaskClient,
                                                        session: DevSession) -> None:
    html = " ".join(preview.get("/").get_data(as_text=True).split())
    stats = re.search(r"fuel <strong data-dev-fuel>([\d,]+)</strong> of ([\d,]+) · peak memory "
                      r"<strong>([\d,]+) KiB</strong> of ([\d,]+) · <strong>([\d.]+) ms</strong> "
                      r"of (\d+) · (\d+) host calls?", html)
    assert stats is not None, html
    fuel, fuel_limit, memory, memory_limit, _, timeout, calls = (
        float(g.replace(",", "")) for g in stats.groups())
    limits = session.build.limits
    assert limits is not None
    assert 0 < fuel < fuel_limit == limits.fuel
    assert 0 < memory <= memory_limit == limits.memory_bytes // 1024
    assert timeout == limits.timeout_ms and calls >= 1
    assert re.search(r'<td class="mono">kv.get</td><td class="mono">\{&#34;key&#34;:&#34;'
                     r'greetings&#34;,&#34;scope&#34;:&#34;agent&#34;\}</td><td class="dev-ok">ok',
                     html)


def test_a_capability_not_requested_is_refused_as_on_the_server(preview: FlaskClient,
                                                                 session: DevSession,
                                                                 folder: Path) -> None:
    _edit(folder / "plugin.toml", 'capabilities = ["log", "kv"]', 'capabilities = ["log"]')
    assert session.poll()
    html = preview.get("/").get_data(as_text=True)
    assert 'data-fault="capability_denied"' in html
    assert "fault capability_denied</strong>: <span class=\"mono\">op &#39;kv.get&#39; needs " \
           "capability &#39;kv&#39;, which is not granted" in html
    assert "(kv)</td>" in html and "denied" in html
    assert preview.get("/__dev/version").status_code == 200


@pytest.mark.parametrize("edit, kind, greet_status", [
    # The panel's action traps; greeting, another action, still works.
    (("src/main.c", 'cms_ui_heading(ctx, "Hello World", 2);',
      'cms_ui_heading(ctx, "Hello World", 2); __builtin_trap();'), "trap", 200),
    (("plugin.toml", "fuel = 5_000_000", "fuel = 10_000"), "fuel_exhausted", 503),
])
def test_a_faulty_module_shows_its_fault_in_the_panel(preview: FlaskClient, session: DevSession,
                                                      folder: Path, edit: tuple[str, str, str],
                                                      kind: str, greet_status: int) -> None:
    _edit(folder / edit[0], edit[1], edit[2])
    assert session.poll() and session.build.error is None
    page = preview.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-fault="{kind}"' in html and f"<strong>fault {kind}</strong>" in html
    assert "Hello World is unavailable right now." in html  # the fallback, as agents see it
    assert _post_greet(preview, "Grace").status_code == greet_status
    assert preview.get("/__dev/version").json == {"version": 2, "ok": True}


def test_a_saved_source_is_rebuilt_and_the_version_changes(preview: FlaskClient,
                                                           session: DevSession,
                                                           folder: Path) -> None:
    first = preview.get("/__dev/version").json
    assert not session.poll()  # nothing changed yet
    _edit(folder / "src/main.c", "Greetings so far:", "Greeted so far:")
    assert session.poll()
    assert preview.get("/__dev/version").json == {"version": first["version"] + 1, "ok": True}
    assert "Greeted so far:" in preview.get("/").get_data(as_text=True)


def test_a_compile_error_is_shown_with_the_compilers_message(preview: FlaskClient,
                                                            session: DevSession,
                                                            folder: Path) -> None:
    _edit(folder / "src/main.c", "static void greet(", "static void greet(not C at all")
    assert session.poll()
    page = preview.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert preview.get("/__dev/version").json == {"version": 2, "ok": False}
    error = re.search(r'<pre class="dev-compiler" data-build-error>(.*?)</pre>', html, re.S)
    assert error is not None and "compile failed" in error.group(1)
    assert "main.c" in error.group(1) and "error:" in error.group(1)
    assert 'data-plugin="hello-world"' in html  # the last good build still renders
    _edit(folder / "src/main.c", "static void greet(not C at all", "static void greet(")
    assert session.poll() and session.build.error is None


def test_the_context_file_sets_the_fake_agency(folder: Path, tmp_path: Path) -> None:
    world = World({"agent": {"id": 3, "username": "z", "name": "Zed Agent", "agency_id": 9}})
    dev = DevSession(folder, tmp_path / "artifacts", world)
    try:
        assert dev.context("dashboard.widget", None)["agent"] == {
            "id": 3, "username": "z", "name": "Zed Agent", "agency_id": 9}
        assert dev.context("client.sidebar", 12)["client"]["name"] == "Ada Lovelace"
        assert "Zed Agent" in create_app(dev).test_client().get("/").get_data(as_text=True)
    finally:
        dev.close()


# the in-memory host against the server's ------------------------------------------------------

def _outcome(handler: Callable[[CallContext, dict[str, Any]], Any], call: CallContext,
             args: dict[str, Any]) -> Any:
    try:
        return {"ok": handler(call, args)}
    except HostOpError as exc:
        return {"error": exc.code, "message": exc.message}


KV_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("kv.set", {"key": "n", "value": {"a": [1, "é"]}}),
    ("kv.get", {"key": "n"}),
    ("kv.get", {"key": "n", "scope": "galaxy"}),
    ("kv.get", {"key": "n", "scope": "client"}),
    ("kv.set", {"key": "", "value": 1}),
    ("kv.set", {"key": "k" * (kv.MAX_KEY + 1), "value": 1}),
    ("kv.set", {"key": "big", "value": "x" * kv.MAX_VALUE_BYTES}),
    ("kv.list", {"prefix": 7}),
    *[("kv.set", {"key": f"fill{i}", "value": "x" * 16_000}) for i in range(17)],
    ("kv.list", {"prefix": "fill1"}),
    ("kv.delete", {"key": "n"}),
    ("kv.delete", {"key": "n"}),
    *[("kv.set", {"key": f"k{i}", "value": i, "scope": "plugin"}) for i in range(kv.MAX_KEYS + 1)],
    ("kv.set", {"key": "k0", "value": "replaced", "scope": "plugin"}),
]
REFUSALS: list[tuple[str, dict[str, Any]]] = [
    ("mail.send", {"to": "not an address", "subject": "Hi", "body": "x"}),
    ("mail.send", {"to": "a@example.com", "subject": "two\nlines", "body": "x"}),
    ("mail.send", {"to": "a@example.com", "subject": "Hi", "body": " "}),
    ("activity.add", {"kind": "fax", "text": "x", "client_id": 1}),
    ("activity.add", {"kind": "note", "text": "  ", "client_id": 1}),
    ("activity.add", {"kind": "note", "text": "x", "data": [], "client_id": 1}),
    ("inventory.search", {"origin": "LH", "destination": "JFK", "date": "2027-01-01"}),
    ("inventory.search", {"origin": "LHR", "destination": "JFK", "date": "soon"}),
    ("inventory.search", {"origin": "LHR", "destination": "JFK", "date": "2027-01-01", "cabin": "Z"}),
    ("clients.get", {"id": "12"}),
    ("clients.search", {"q": 5}),
    ("clients.search", {"limit": "all"}),
    ("bookings.get", {"id": 0}),
    ("bookings.list", {"client_id": True}),
    ("bookings.create", {"client_id": 1, "status": "ticketed"}),
    ("http.get", {"url": "ftp://example.com/"}),
    ("http.get", {"url": "https://not-allowed.example/"}),
]


def test_the_in_memory_host_answers_as_the_servers_host_ops(app: Flask,
                                                            personas: Personas) -> None:
    """The same ops, in order, against the server's handlers (its database) and the dev host:
    the same results and the same error codes and messages, quotas included."""
    with app.app_context():
        user = db.session.query(User).filter_by(username=personas.agent_a).one()
        actor = Actor(user.id, user.username, user.agency_id)
        host = hostops.HostContext(session=db.session, plugin_id="hello-world",
                                   agency_id=personas.agency_a_id, actor=actor)
        world = World({"agent": {"id": user.id, "username": user.username, "name": "A",
                                 "agency_id": personas.agency_a_id}, "client_id": None})
        dev = DevHost(world, "hello-world", ()).ops()
        server_call = CallContext("hello-world", "0.1.0", frozenset(), 10_000, 0.0, {"host": host})
        dev_call = CallContext("hello-world", "0.1.0", frozenset(), 10_000, 0.0,
                               {"dev": CallRecord(None)})
        compared = 0
        for op, args in [*KV_STEPS, *REFUSALS]:
            expected = _outcome(hostops.HANDLERS[op], server_call, args)
            handler = dev.get(op)
            assert handler is not None
            assert _outcome(handler.handler, dev_call, args) == expected, (op, args)
            compared += "error" in expected
        assert compared >= len(REFUSALS) + 6  # the kv refusals and both quotas were met
        codes = {_outcome(hostops.HANDLERS[op], server_call, args).get("error")
                 for op, args in KV_STEPS}
        assert {"bad_args", "no_client", "too_large", "quota_exceeded"} <= codes


def test_the_dev_host_offers_the_servers_op_table() -> None:
    server = hostops.host_ops()
    dev = DevHost(World(), "x", ()).ops()
    assert dev.names() == server.names()
    for name in server.names():
        ours, theirs = dev.get(name), server.get(name)
        assert ours is not None and theirs is not None
        assert (ours.capability, ours.timeout_ms, ours.blocking) == (
            theirs.capability, theirs.timeout_ms, theirs.blocking)


# the command ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cms_plugin_dev_serves_the_preview_on_localhost(folder: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    process = subprocess.Popen([str(Path(sys.executable).parent / "cms-plugin"), "dev", str(folder),
                                "--port", str(port)], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"Previewing Hello World on http://127.0.0.1:{port}/ (Ctrl-C stops)"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as answer:
            html = answer.read().decode()
        assert answer.status == 200 and 'data-plugin="hello-world"' in html
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/__dev/version", timeout=10) as answer:
            assert json.loads(answer.read()) == {"version": 1, "ok": True}
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err and err.strip().endswith("stopped")
    assert '"GET / HTTP/1.1" 200' in err and "/__dev/version" not in err  # polls are not logged


def test_bad_input_is_one_line_and_exit_2(folder: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    bad_context = tmp_path / "context.json"
    bad_context.write_text('{"client_id": 99}', encoding="utf-8")
    cases = [
        ([str(tmp_path)], f"{tmp_path}: not a plugin folder (no plugin.toml)"),
        ([str(tmp_path / "missing")], "no such folder"),
        ([str(folder), "--port", str(port)], f"port {port} on 127.0.0.1 is in use"),
        ([str(folder), "--context", str(bad_context)], "client_id 99 is not among clients"),
        ([str(folder), "--context", str(tmp_path / "none.json")], "cannot read"),
    ]
    try:
        for args, expected in cases:
            assert main(["dev", *args]) == 2, args
            err = capsys.readouterr().err
            assert len(err.strip().splitlines()) == 1 and expected in err, err
    finally:
        busy.close()


def test_dev_help_says_where_it_builds_and_listens(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dev", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "scratch folder (your dist/ is left alone)" in out and "127.0.0.1" in out
    assert main(["--help"]) == 0
    assert "cms-plugin dev hello-world" in capsys.readouterr().out

