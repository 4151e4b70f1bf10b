"""`cms-plugin publish`: upload a signed package to a CMS server (admin API token)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from plugin_sdk.cli.common import (EXIT_TEST_FAILURE, UsageProblem, console, emit_json,
                                   json_option, one_line)
from plugin_sdk.package import SUFFIX, PackageError, read_package

TIMEOUT_S = 300  # the server runs the staging gate before it answers


@click.command()
@click.argument("package_path", metavar="PACKAGE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url", required=True, envvar="CMS_URL", help="The CMS, e.g. https://cms.example.com [env CMS_URL].")
@click.option("--token", required=True, envvar="CMS_TOKEN",
              help="An admin API token (flask --app cms token create USER) [env CMS_TOKEN].")
@json_option
def publish(package_path: Path, url: str, token: str, as_json: bool) -> None:
    """Upload PACKAGE (.cmsplugin) to the CMS at --url. The server checks the signature against
    its trusted keys and runs the staging gate; exit 1 when the gate does not pass."""
    if package_path.suffix != SUFFIX:
        raise UsageProblem(f"{package_path}: a package ends in {SUFFIX} (make one with cms-plugin package)")
    try:
        data = package_path.read_bytes()
        read_package(data, source=str(package_path))  # refuse a broken package before sending it
    except FileNotFoundError:
        raise UsageProblem(f"{package_path}: no such file") from None
    except PackageError as exc:
        raise UsageProblem(str(exc)) from None
    if not url.startswith(("http://", "https://")):
        raise UsageProblem(f"--url must start with http:// or https://, got {url!r}")
    request = urllib.request.Request(
        url.rstrip("/") + "/api/admin/plugins", data=data, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body: dict[str, Any] = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read() or b"{}").get("error", {})
            message = error.get("message") or exc.reason
        except ValueError:
            message = exc.reason
        raise UsageProblem(f"the server refused the package (HTTP {exc.code}): {one_line(str(message))}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise UsageProblem(f"cannot reach {url}: {one_line(str(getattr(exc, 'reason', exc)))}") from None
    gate = body.get("gate_status")
    if as_json:
        emit_json(body)
    else:
        out = console()
        colour = "green" if gate == "passed" else "red"
        out.print(f"Published {body.get('plugin_id')} {body.get('version')}: staging gate "
                  f"[{colour}]{gate}[/]")
        for problem in (body.get("gate_report") or {}).get("problems", [])[:10]:
            out.print(f"  [red]✗[/] {problem}")
        for regression in (body.get("gate_report") or {}).get("regressions", []):
            out.print(f"  [red]✗[/] {regression}")
    if gate != "passed":
        sys.exit(EXIT_TEST_FAILURE)
