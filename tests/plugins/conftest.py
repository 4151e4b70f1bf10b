"""Plugin host tests: an app whose plugin folder holds only the test plugins built here."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

import pytest
from flask import Flask

from cms.extensions import db
from cms.app_state import state
from cms.flags import config_version, ensure_plugin_flag
from cms.models import PluginInstall
from cms.plugins.lifecycle import register_bundled
from cms.plugins.registry import BuiltPlugin
from plugin_sdk.manifest import parse_manifest
from plugin_sdk.project import built_manifest_text
from plugin_sdk.toolchain import compile_module, zig_available
from tests.conftest import Personas, build_app, create_personas, make_settings, require

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def probe_wasm(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    require(zig_available(), "the ziglang package (pip install 'cms[sdk]')")
    return compile_module("c", HERE / "probe" / "src" / "main.c",
                          tmp_path_factory.mktemp("probe") / "probe.wasm")


def built(manifest_text: str, wasm: bytes) -> BuiltPlugin:
    """A BuiltPlugin from source-manifest text, as `cms-plugin build` would describe it."""
    text = built_manifest_text(parse_manifest(manifest_text), "m.wasm",
                               hashlib.sha256(wasm).hexdigest())
    return BuiltPlugin(parse_manifest(text), wasm, None, text)


def install(app: Flask, plugin: BuiltPlugin, grants: list[str] | None = None,
            enabled: bool = True) -> None:
    with app.app_context():
        register_bundled(db.session, plugin.manifest_text, plugin.wasm, plugin.vectors)
        row = db.session.get(PluginInstall, plugin.manifest.id)
        if row is None:
            row = PluginInstall(plugin_id=plugin.manifest.id, version=plugin.manifest.version)
            db.session.add(row)
        row.version = plugin.manifest.version
        row.enabled = enabled
        row.granted = sorted(plugin.manifest.capabilities) if grants is None else grants
        ensure_plugin_flag(db.session, plugin.manifest.id, plugin.manifest.name)
        db.session.commit()
        state().flags.changed(config_version(db.session))


def probe_plugin(wasm: bytes) -> BuiltPlugin:
    return built((HERE / "probe" / "plugin.toml").read_text(), wasm)


def make_plugin_app(tmp_path: Path, probe_wasm: bytes, database_url: str | None = None,
                    **settings: Any) -> Iterator[Flask]:
    empty = tmp_path / "plugins"
    empty.mkdir()
    for app in build_app(make_settings(tmp_path, database_url, plugin_dir=empty, **settings)):
        install(app, probe_plugin(probe_wasm))
        yield app


@pytest.fixture
def app(tmp_path: Path, probe_wasm: bytes) -> Iterator[Flask]:
    yield from make_plugin_app(tmp_path, probe_wasm)


@pytest.fixture
def personas(app: Flask) -> Personas:
    return create_personas(app)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_app(request: pytest.FixtureRequest, tmp_path: Path, probe_wasm: bytes) -> Iterator[Flask]:
    """The plugin app on SQLite and again on PostgreSQL (transactions behave differently)."""
    url = request.getfixturevalue("postgres_schema_url") if request.param == "postgresql" else None
    yield from make_plugin_app(tmp_path, probe_wasm, url)
