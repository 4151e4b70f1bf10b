"""`cms-plugin dev`: serve a live preview of a plugin folder on 127.0.0.1, rebuilt on save."""

from __future__ import annotations

import errno
import json
import socket
import threading
from pathlib import Path
from typing import Any

import click

from plugin_sdk.cli.common import UsageProblem, cache_dir

HOST = "127.0.0.1"
POLL_S = 0.5


def _world(path: Path | None) -> Any:
    from plugin_sdk.devserver import World, WorldError

    if path is None:
        return World()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageProblem(f"--context: cannot read {path} ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageProblem(f"--context: {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageProblem(f"--context: {path} must hold a JSON object")
    try:
        return World(data)
    except WorldError as exc:
        raise UsageProblem(f"--context: {path}: {exc}") from None


def _listen(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:`port`; UsageProblem when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageProblem(f"port {port} on {HOST} is in use; pick another with --port") from None
        raise UsageProblem(f"cannot listen on {HOST}:{port} ({exc.strerror})") from None
    sock.listen(64)
    return sock


@click.command()
@click.argument("folder", default=".", type=click.Path(path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--context", "context_file", type=click.Path(path_type=Path), metavar="FILE.json",
              help="The fake agency as JSON: any of agent, client_id, clients, bookings.")
def dev(folder: Path, port: int, context_file: Path | None) -> None:
    """Preview FOLDER's panels as an agent sees them, rebuilt on every save.

    Builds into a scratch folder (your dist/ is left alone), runs each panel in the server's
    sandbox against an in-memory host with the server's quotas and error codes, and serves the
    page on http://127.0.0.1:PORT/ (only this machine). Ctrl-C stops it.
    """
    from werkzeug.serving import WSGIRequestHandler, make_server

    from plugin_sdk import project, toolchain
    from plugin_sdk.devserver import DevSession, create_app
    from plugin_sdk.manifest import MANIFEST_NAME, ManifestError

    if not folder.is_dir():
        raise UsageProblem(f"{folder}: no such folder")
    if not (folder / MANIFEST_NAME).is_file():
        raise UsageProblem(f"{folder}: not a plugin folder (no {MANIFEST_NAME}); "
                           "cms-plugin new makes one")
    try:
        manifest = project.source_manifest(folder)
    except (ManifestError, project.ProjectError) as exc:
        raise UsageProblem(str(exc)) from None
    if manifest.build_lang in ("zig", "c") and not toolchain.zig_available():
        raise UsageProblem("the compiler is not installed: pip install 'cms[sdk]' "
                           f"(brings ziglang=={toolchain.ZIG_VERSION})")
    world = _world(context_file)
    sock = _listen(port)
    session = DevSession(folder, cache_dir(), world)
    bound = sock.getsockname()[1]

    class QuietPolls(WSGIRequestHandler):
        """Logs requests, except the page's twice-a-second look at the build version."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if not self.path.startswith("/__dev/"):
                super().log_request(code, size)

    server = make_server(HOST, bound, create_app(session), threaded=True, fd=sock.fileno(),
                         request_handler=QuietPolls)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(POLL_S):
            if session.poll():
                build = session.build
                click.echo(f"rebuilt ({build.seconds:.2f} s)" if build.error is None
                           else f"build failed: {build.error.splitlines()[0]}", err=True)

    watcher = threading.Thread(target=watch, name="cms-plugin-dev-watch", daemon=True)
    watcher.start()
    if session.build.error is not None:
        click.echo(f"build failed (shown on the page): {session.build.error.splitlines()[0]}", err=True)
    click.echo(f"Previewing {manifest.name} on http://{HOST}:{bound}/ (Ctrl-C stops)")
    try:
        server.serve_forever()  # returns on Ctrl-C (werkzeug catches the KeyboardInterrupt)
    finally:
        stop.set()
        watcher.join(timeout=2)
        server.server_close()
        session.close()
    click.echo("stopped", err=True)
