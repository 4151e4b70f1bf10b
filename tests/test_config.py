"""Settings parsed from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cms.config import ConfigError, Settings


def test_defaults_use_sqlite_under_instance_and_keep_a_generated_secret(tmp_path: Path) -> None:
    first = Settings.from_env({}, instance_path=tmp_path)
    second = Settings.from_env({}, instance_path=tmp_path)
    assert first.database_url == f"sqlite:///{tmp_path / 'cms.sqlite3'}"
    assert first.redis_url is None and first.port == 8000
    assert len(first.secret_key) >= 32 and first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_postgres_url_gets_the_psycopg_driver(tmp_path: Path) -> None:
    settings = Settings.from_env({"CMS_DATABASE_URL": "postgresql://127.0.0.1/test"}, instance_path=tmp_path)
    assert settings.database_url == "postgresql+psycopg://127.0.0.1/test"


def test_production_requires_a_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CMS_SECRET_KEY is required"):
        Settings.from_env({"CMS_ENV": "production"}, instance_path=tmp_path)
    settings = Settings.from_env({"CMS_ENV": "production", "CMS_SECRET_KEY": "s" * 40}, instance_path=tmp_path)
    assert settings.session_cookie_secure is True


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "PORT must be a whole number"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY must be at least 1"),
        ({"CMS_SECURE_COOKIES": "maybe"}, "CMS_SECURE_COOKIES must be true or false"),
        ({"CMS_ENV": "staging"}, "CMS_ENV must be development, production or testing"),
    ],
)
def test_bad_values_are_rejected_with_the_variable_name(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, instance_path=tmp_path)


def test_values_are_read(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"PORT": "9000", "WEB_CONCURRENCY": "5", "CMS_REDIS_URL": "redis://127.0.0.1:6379/0"},
        instance_path=tmp_path,
    )
    assert (settings.port, settings.web_concurrency, settings.redis_url) == (
        9000, 5, "redis://127.0.0.1:6379/0",
    )


def test_plugin_limits_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"CMS_PLUGIN_FUEL": "7000000", "CMS_PLUGIN_MEMORY_MB": "32",
                                  "CMS_PLUGIN_TIMEOUT_MS": "250", "CMS_PLUGIN_MAX_MEMORY_MB": "64",
                                  "CMS_PLUGIN_ARTIFACT_DIR": str(tmp_path / "art")}, tmp_path)
    config = settings.runtime_config()
    assert (config.defaults.fuel, config.defaults.memory_bytes, config.defaults.timeout_ms) == (
        7_000_000, 32 * 1024 * 1024, 250)
    assert config.caps.memory_bytes == 64 * 1024 * 1024
    assert config.artifact_dir == tmp_path / "art"
    assert config.compile_missing  # development compiles a missing artifact on first use...
    production = Settings.from_env({"CMS_ENV": "production", "CMS_SECRET_KEY": "x" * 32}, tmp_path)
    assert not production.runtime_config().compile_missing  # ...production never compiles on load
    forced = Settings.from_env({"CMS_PLUGIN_COMPILE_MISSING": "0"}, tmp_path)
    assert not forced.runtime_config().compile_missing
    assert Settings.from_env({}, tmp_path).runtime_config().artifact_dir == tmp_path / "artifacts"


@pytest.mark.parametrize("env, message", [
    ({"CMS_PLUGIN_MEMORY_MB": "64", "CMS_PLUGIN_MAX_MEMORY_MB": "32"},
     "CMS_PLUGIN_MEMORY_MB (64) exceeds CMS_PLUGIN_MAX_MEMORY_MB (32)"),
    ({"CMS_PLUGIN_MAX_MEMORY_MB": "256"}, "CMS_PLUGIN_MAX_MEMORY_MB may be at most 128"),
    ({"CMS_PLUGIN_TIMEOUT_MS": "0"}, "CMS_PLUGIN_TIMEOUT_MS must be at least 1"),
    ({"CMS_PLUGIN_FUEL": "lots"}, "CMS_PLUGIN_FUEL must be a whole number"),
])
def test_bad_plugin_limits_are_refused(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env, tmp_path)


def test_workers_starting_together_share_one_development_secret(tmp_path: Path) -> None:
    """Gunicorn without preload starts its workers at once; each must read the same key (a
    worker that lost the race used to crash on FileExistsError)."""
    import multiprocessing

    from cms.config import _load_or_create_secret

    with multiprocessing.get_context("fork").Pool(8) as pool:
        keys = pool.map(_load_or_create_secret, [tmp_path] * 16)
    assert len(set(keys)) == 1 and len(keys[0]) >= 40
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]
