"""The replay's database: created, migrated and seeded once (then reused), put back to the state
before the incident at the start of every run, and read for quarantine and alert times after it.

The faulty variants in wasm/faulty/ are recorded as bundled versions (as CI would ship them) and
their artifacts compiled, but not released: the run releases them through the admin API.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from servers import REPO, VENV_BIN, log

FAULTY = {"softphone": "softphone-leaky", "mail": "mail-spinning", "terminal": "terminal-failing"}


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5):
            return
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            raise
    name = urlsplit(url).path.lstrip("/")
    log(f"creating database {name}")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True,
                         connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def flask_cli(env: dict[str, str], *args: str, timeout: int) -> str:
    command = [str(VENV_BIN / "flask"), "--app", "cms", *args]
    log("$ flask --app cms " + shlex.join(args))
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def seeded_agents(url: str) -> int:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM users WHERE username LIKE 'agent%'").fetchone()
    return int(row[0]) if row else 0


def prepare(url: str, env: dict[str, str], agents: int, agencies: int, clients: int,
            password: str) -> tuple[str | None, str]:
    """Create, migrate and (when it has fewer agents) seed; install the bundled plugins; return
    (the seed command when one ran, an admin API token)."""
    ensure_database(url)
    flask_cli(env, "db", "upgrade", timeout=300)
    seed_command = None
    if seeded_agents(url) < agents:
        args = ["seed", "--agencies", str(agencies), "--agents", str(agents),
                "--clients", str(clients), "--password", password]
        started = time.monotonic()
        flask_cli(env, *args, timeout=1800)
        log(f"seeded in {time.monotonic() - started:.0f} s")
        seed_command = "flask --app cms " + shlex.join(args[:-2])
    else:
        log(f"database already seeded ({seeded_agents(url)} agents): reused")
    flask_cli(env, "plugins", "sync", timeout=600)
    out = flask_cli(env, "token", "create", "demo.admin", "--name", "incident replay", timeout=60)
    token = re.search(r"cms_\S+", out)
    if token is None:
        raise RuntimeError(f"no token in: {out!r}")
    return seed_command, token.group(0)


def reset(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Back to the morning of 10 April: the good versions current for every agent, nothing
    quarantined, no softphone history, no alerts, the kill switches and auto-quarantine on; the
    faulty versions recorded, compiled and through the staging gate. Returns {plugin id:
    {"version", "gate", "problems"}} for the faulty versions."""
    from sqlalchemy import delete, select, text

    from cms import create_app
    from cms.audit import Actor
    from cms.config import Settings
    from cms.extensions import db
    from cms.flags import set_flag
    from cms.models import PluginInstall, PluginValue, PluginVersion
    from cms.plugins import lifecycle
    from plugin_sdk.manifest import load_manifest

    app = create_app(Settings.from_env(env))
    registry = app.extensions["cms"].plugins
    faulty: dict[str, dict[str, Any]] = {}
    try:
        with app.app_context():
            session = db.session
            for plugin_id, folder_name in FAULTY.items():
                folder = REPO / "wasm" / "faulty" / folder_name
                manifest = load_manifest(folder)
                wasm = (folder / (manifest.module_file or "")).read_bytes()
                vectors = {f"{manifest.tests}/{p.name}": p.read_text(encoding="utf-8")
                           for p in sorted((folder / manifest.tests).glob("*.json"))}
                lifecycle.register_bundled(session, (folder / "plugin.toml").read_text(), wasm,
                                           vectors)
                registry.runtime.compile(wasm)
                faulty[plugin_id] = {"version": manifest.version}
                good = registry.get(plugin_id)
                if good is None:
                    raise RuntimeError(f"{plugin_id} is not among the built plugins")
                install = session.get(PluginInstall, plugin_id)
                if install is None:
                    raise RuntimeError(f"{plugin_id} is not installed (flask plugins sync?)")
                install.version, install.previous_version = good.manifest.version, None
                install.canary_version, install.canary_percent = None, 0
                install.enabled = True
                for row in session.scalars(select(PluginVersion).where(
                        PluginVersion.plugin_id == plugin_id)):
                    row.quarantined_at, row.quarantine_reason = None, None
            session.execute(delete(PluginValue).where(PluginValue.plugin_id == "softphone",
                                                      PluginValue.key.like("history%")))
            if session.execute(text("SELECT to_regclass('alerts')")).scalar() is not None:
                session.execute(text("DELETE FROM alerts"))
            session.commit()
            # The staging gate, once per version (as `flask plugins sync` does for bundled ones):
            # its verdict on the faulty versions is part of the story.
            config = registry.runtime.config
            lifecycle.measure_bundled(session, config.caps, config.artifact_dir)
            actor = Actor(None, "incident-replay", None)
            for key in ("plugins.all", "plugins.auto_quarantine",
                        *(f"plugin.{p}" for p in FAULTY)):
                set_flag(session, actor, key, enabled=True, rollout_percent=100, targeting={},
                         reason="incident replay: everything on, as on 10 April")
            for plugin_id, info in faulty.items():
                row = lifecycle.get_version(session, plugin_id, info["version"])
                info["gate"] = row.gate_status
                info["problems"] = list(row.gate_report.get("problems", []))[:3]
    finally:
        registry.close()
    return faulty


def outcomes(env: dict[str, str], since: float) -> dict[str, Any]:
    """What the database recorded after `since` (epoch s): promotions, quarantines (version
    rows and audit events) and alerts, each with epoch times."""
    from sqlalchemy import select, text

    from cms import create_app
    from cms.config import Settings
    from cms.extensions import db
    from cms.models import AuditEvent, PluginVersion

    app = create_app(Settings.from_env(env))
    try:
        with app.app_context():
            session = db.session
            events = session.scalars(select(AuditEvent).where(
                AuditEvent.action.in_(["plugin.promote", "plugin.quarantine"]))
                .order_by(AuditEvent.created_at)).all()
            audit = [{"action": e.action, "target": e.target_label, "actor": e.actor_name,
                      "t": e.created_at.timestamp()} for e in events
                     if e.created_at.timestamp() >= since - 1]
            versions = {}
            for row in session.scalars(select(PluginVersion)):
                versions[f"{row.plugin_id} {row.version}"] = {
                    "quarantined_at": row.quarantined_at.timestamp() if row.quarantined_at else None,
                    "reason": row.quarantine_reason}
            alerts: list[dict[str, Any]] | None = None
            if session.execute(text("SELECT to_regclass('alerts')")).scalar() is not None:
                from cms.models.monitoring import Alert

                alerts = [{"kind": a.kind, "plugin_id": a.plugin_id, "version": a.version,
                           "severity": a.severity, "message": a.message, "count": a.count,
                           "t": a.first_seen.timestamp()}
                          for a in session.scalars(select(Alert).order_by(Alert.first_seen))]
    finally:
        app.extensions["cms"].plugins.close()
    return {"audit": audit, "versions": versions, "alerts": alerts}


def artifact_dir_for(url: str, root: Path) -> Path:
    """A lasting instance folder per database (compiled artifacts survive between runs)."""
    return root / f"cms-replay-{urlsplit(url).path.lstrip('/')}"
