"""`flask --app cms plugins sync|list`: record the built plugins as installed and precompile
their runtime artifacts (the server never compiles in a request)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from cms.app_state import state
from cms.extensions import db
from cms.models import PluginInstall
from cms.plugins.lifecycle import measure_bundled
from cms.plugins.service import sync_installs


@click.group("plugins")
def plugins_group() -> None:
    """Manage the plugins this CMS runs."""


@plugins_group.command("sync")
@with_appcontext
def sync_command() -> None:
    """Install every built plugin in the plugin folder (on, with what it requests) unless it is
    already installed, and compile its runtime artifact for this machine."""
    registry = state().plugins
    added = sync_installs(db.session, registry, state().flags)
    for plugin_id, built in sorted(registry.built().items()):
        path = registry.runtime.compile(built.wasm)
        mark = "installed" if plugin_id in added else "present"
        click.echo(f"{plugin_id} {built.manifest.version}: {mark}, artifact {path.name}")
    if not registry.built():
        click.echo(f"No built plugins in {registry.plugin_dir}", err=True)
    config = registry.runtime.config
    for row in measure_bundled(db.session, config.caps, config.artifact_dir):
        actions = ", ".join(f"{a} {s['fuel_p50']:,} fuel" for a, s in row.gate_report["actions"].items())
        click.echo(f"{row.plugin_id} {row.version}: baseline measured, gate {row.gate_status} ({actions})")


@plugins_group.command("list")
@with_appcontext
def list_command() -> None:
    """Show the installed plugins: on or off, version and granted capabilities."""
    for install in db.session.query(PluginInstall).order_by(PluginInstall.plugin_id):
        state_ = "on " if install.enabled else "off"
        click.echo(f"{install.plugin_id:<12} {state_} {install.version:<16} {', '.join(install.granted)}")
