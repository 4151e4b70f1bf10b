"""`cms-plugin`: the plugin author's command line, from nothing to a signed, tested package.

Exit codes: 0 ok, 1 test or check failure, 2 usage error or bad input (one line on stderr),
3 plugin fault. `--json` on every command prints one JSON object for CI.
"""

from __future__ import annotations

import logging
import sys

import click

from plugin_sdk.cli.author import build, check, new
from plugin_sdk.cli.common import EXIT_OK, EXIT_USAGE
from plugin_sdk.cli.dev import dev
from plugin_sdk.cli.pack import keygen, package
from plugin_sdk.cli.publish import publish
from plugin_sdk.cli.run import run
from plugin_sdk.cli.testcmd import test

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cms", prog_name="cms-plugin")
def cli() -> None:
    """Build, test and package CMS plugins in the same sandbox the server uses.

    \b
    A plugin from nothing to a signed package:
      cms-plugin new "Hello World" --lang zig
      cms-plugin build hello-world
      cms-plugin dev hello-world         (live preview on 127.0.0.1)
      cms-plugin check hello-world
      cms-plugin test hello-world
      cms-plugin keygen
      cms-plugin package hello-world
      cms-plugin publish hello-world/dist/hello-world-0.1.0.cmsplugin --url URL --token TOKEN
    """


for command in (new, build, check, test, keygen, package, publish, run, dev):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning every usage error into one line and exit code 2."""
    # The runtime logs faults for the server's logs; here the CLI reports them itself.
    logging.getLogger("cms").addHandler(logging.NullHandler())
    try:
        cli.main(args=argv, prog_name="cms-plugin", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `cms-plugin`: help, not an error
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return EXIT_USAGE
    except click.UsageError as exc:
        click.echo(f"cms-plugin: {' '.join(exc.format_message().split())}", err=True)
        return EXIT_USAGE
    except click.Abort:
        click.echo("cms-plugin: aborted", err=True)
        return EXIT_USAGE
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
