"""What every `cms-plugin` command shares: exit codes, one-line usage errors, output, paths."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_OK, EXIT_TEST_FAILURE, EXIT_USAGE, EXIT_FAULT = 0, 1, 2, 3

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object on stdout (for CI), nothing else.")


class UsageProblem(click.UsageError):
    """Bad usage or bad input: reported as one line and exit code 2."""


def cache_dir() -> Path:
    """Where the CLI keeps compiled runtime artifacts (XDG cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cms-plugin" / "artifacts"


def config_dir() -> Path:
    """Where the CLI keeps the author's keys (XDG config)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cms-plugin"


def console(stderr: bool = False) -> Any:
    """A rich console; colours only on a terminal, never with NO_COLOR."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs) gets a width that fits the tables instead of rich's 80 columns.
    width = None if stream.isatty() else 132
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def fault_exit(fault: Any, as_json: bool) -> NoReturn:
    """Report a PluginFault (exit 3): its kind and message, or `as_dict()` as JSON."""
    if as_json:
        emit_json(fault.as_dict())
    else:
        click.echo(f"plugin fault: {fault.kind}: {fault.message}", err=True)
    sys.exit(EXIT_FAULT)


def one_line(text: str) -> str:
    return " ".join(str(text).split())
