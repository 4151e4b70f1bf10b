"""Settings, parsed once from the environment.

`Settings.from_env()` is the only place that reads `os.environ`; everything else receives a
`Settings` (or the Flask config built from it).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from cms.monitoring.settings import MonitorSettings


class ConfigError(RuntimeError):
    """Raised when the environment holds a setting that cannot be used."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def normalize_database_url(url: str) -> str:
    """Return `url` with the psycopg 3 driver named for PostgreSQL URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _load_or_create_secret(instance_path: Path) -> str:
    """Return the development secret kept in `instance/secret_key`, creating it once.

    Workers that start together (Gunicorn without preload) race for it: the key is written to
    a temporary file and linked into place, so exactly one wins and every process reads the
    same whole key."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    temporary = instance_path / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    try:
        os.link(temporary, path)  # atomic: fails if another process linked its key first
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        os.unlink(temporary)
    return key


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment."""

    env: str = "development"
    database_url: str = ""
    redis_url: str | None = None
    secret_key: str = ""
    port: int = 8000
    web_concurrency: int = 2
    trusted_proxies: int = 0
    session_cookie_secure: bool = False
    session_idle_minutes: int = 12 * 60
    #: Failures on one account from one address before that pair waits out the window.
    login_max_failures_per_account: int = 5
    #: Failures from one address (any account) before its attempts get a growing delay.
    login_max_failures_per_ip: int = 30
    #: Failures on one account (from anywhere) before attempts from addresses that failed
    #: recently get a growing delay.
    login_account_delay_after: int = 20
    login_max_delay_seconds: int = 60
    login_window_seconds: int = 15 * 60
    redis_socket_timeout: float = 0.25
    password_hash_fast: bool = False
    instance_path: Path = field(default_factory=lambda: Path("instance").resolve())
    # Plugin sandbox: per-call defaults, and the admin caps a manifest may ask up to.
    plugin_fuel: int = 50_000_000
    plugin_memory_mb: int = 16
    plugin_timeout_ms: int = 1_000
    plugin_max_host_calls: int = 64
    plugin_max_fuel: int = 1_000_000_000
    plugin_max_memory_mb: int = 128
    plugin_max_timeout_ms: int = 10_000
    plugin_artifact_dir: Path | None = None
    #: Built plugins (`<dir>/<id>/plugin.toml`); the bundled ones are in the repo's wasm/.
    plugin_dir: Path = field(default_factory=lambda: Path(__file__).resolve().parent.parent / "wasm")
    #: Compile a missing runtime artifact on first use (development); production refuses and
    #: expects `flask plugins sync` to have compiled them.
    plugin_compile_missing: bool = True
    smtp_url: str | None = None
    mail_from: str = "noreply@cms.local"
    #: A plugin's mail waits this long in the outbox, so its sender can undo it, before the
    #: courier hands it to the relay.
    mail_undo_s: int = 10
    #: The circuit breaker: this many faults of one plugin version in the window quarantine it.
    quarantine_faults: int = 5
    quarantine_window_s: int = 60
    #: A panel inside a page gets this long (ms); past it the page shows a placeholder and the
    #: browser fetches the panel with the action's whole deadline.
    panel_budget_ms: int = 50
    #: Detector thresholds, time series and alert delivery (cms.monitoring, docs/monitoring.md).
    monitoring: MonitorSettings = field(default_factory=lambda: _monitor_settings({}))

    def _checked(self) -> "Settings":
        """Self, after checking the plugin limits against their caps (raises ConfigError)."""
        if self.plugin_max_memory_mb > 128:
            raise ConfigError("CMS_PLUGIN_MAX_MEMORY_MB may be at most 128")
        for name, default, cap in (
            ("FUEL", self.plugin_fuel, self.plugin_max_fuel),
            ("MEMORY_MB", self.plugin_memory_mb, self.plugin_max_memory_mb),
            ("TIMEOUT_MS", self.plugin_timeout_ms, self.plugin_max_timeout_ms),
        ):
            if default > cap:
                raise ConfigError(f"CMS_PLUGIN_{name} ({default}) exceeds CMS_PLUGIN_MAX_{name} ({cap})")
        return self

    def login_limits(self) -> Any:
        """The login throttle's limits (cms.auth.service.LoginLimits)."""
        from cms.auth.service import LoginLimits

        return LoginLimits(self.login_max_failures_per_account, self.login_account_delay_after,
                           self.login_max_failures_per_ip, self.login_max_delay_seconds)

    def runtime_config(self) -> Any:
        """The plugin runtime's `RuntimeConfig`; raises ConfigError when defaults exceed caps."""
        from cms.runtime import Limits, LimitsError, RuntimeConfig

        mib = 1024 * 1024
        try:
            caps = Limits(fuel=self.plugin_max_fuel, memory_bytes=self.plugin_max_memory_mb * mib,
                          timeout_ms=self.plugin_max_timeout_ms,
                          max_host_calls=self.plugin_max_host_calls)
            defaults = Limits(fuel=self.plugin_fuel, memory_bytes=self.plugin_memory_mb * mib,
                              timeout_ms=self.plugin_timeout_ms,
                              max_host_calls=self.plugin_max_host_calls).within(caps)
        except LimitsError as exc:
            raise ConfigError(f"plugin limits: {exc}") from None
        artifacts = self.plugin_artifact_dir or self.instance_path / "artifacts"
        return RuntimeConfig(artifact_dir=artifacts, defaults=defaults, caps=caps,
                             compile_missing=self.plugin_compile_missing)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, instance_path: Path | None = None
    ) -> "Settings":
        """Parse `env` (default `os.environ`); raises ConfigError on unusable values."""
        env = os.environ if env is None else env
        instance = (instance_path or Path(env.get("CMS_INSTANCE_PATH", "instance"))).resolve()
        mode = env.get("CMS_ENV", "development").strip().lower() or "development"
        if mode not in {"development", "production", "testing"}:
            raise ConfigError(f"CMS_ENV must be development, production or testing, got {mode!r}")
        database_url = env.get("CMS_DATABASE_URL", "").strip()
        if not database_url:
            instance.mkdir(parents=True, exist_ok=True)
            database_url = f"sqlite:///{instance / 'cms.sqlite3'}"
        secret = env.get("CMS_SECRET_KEY", "").strip()
        if not secret:
            if mode == "production":
                raise ConfigError("CMS_SECRET_KEY is required when CMS_ENV=production")
            secret = _load_or_create_secret(instance)
        artifacts = env.get("CMS_PLUGIN_ARTIFACT_DIR", "").strip()
        return cls(
            env=mode,
            database_url=normalize_database_url(database_url),
            redis_url=env.get("CMS_REDIS_URL", "").strip() or None,
            secret_key=secret,
            port=_int(env, "PORT", 8000, minimum=1),
            web_concurrency=_int(env, "WEB_CONCURRENCY", 2, minimum=1),
            trusted_proxies=_int(env, "CMS_TRUSTED_PROXIES", 0),
            session_cookie_secure=_bool(env, "CMS_SECURE_COOKIES", mode == "production"),
            session_idle_minutes=_int(env, "CMS_SESSION_IDLE_MINUTES", 12 * 60, minimum=1),
            login_max_failures_per_account=_int(env, "CMS_LOGIN_MAX_FAILURES", 5, minimum=1),
            login_max_failures_per_ip=_int(env, "CMS_LOGIN_MAX_FAILURES_PER_IP", 30, minimum=1),
            login_account_delay_after=_int(env, "CMS_LOGIN_ACCOUNT_DELAY_AFTER", 20, minimum=1),
            login_max_delay_seconds=_int(env, "CMS_LOGIN_MAX_DELAY_SECONDS", 60, minimum=1),
            login_window_seconds=_int(env, "CMS_LOGIN_WINDOW_SECONDS", 15 * 60, minimum=1),
            instance_path=instance,
            plugin_fuel=_int(env, "CMS_PLUGIN_FUEL", 50_000_000, minimum=1),
            plugin_memory_mb=_int(env, "CMS_PLUGIN_MEMORY_MB", 16, minimum=1),
            plugin_timeout_ms=_int(env, "CMS_PLUGIN_TIMEOUT_MS", 1_000, minimum=1),
            plugin_max_host_calls=_int(env, "CMS_PLUGIN_MAX_HOST_CALLS", 64, minimum=1),
            plugin_max_fuel=_int(env, "CMS_PLUGIN_MAX_FUEL", 1_000_000_000, minimum=1),
            plugin_max_memory_mb=_int(env, "CMS_PLUGIN_MAX_MEMORY_MB", 128, minimum=1),
            plugin_max_timeout_ms=_int(env, "CMS_PLUGIN_MAX_TIMEOUT_MS", 10_000, minimum=1),
            plugin_artifact_dir=Path(artifacts).resolve() if artifacts else None,
            **({"plugin_dir": Path(env["CMS_PLUGIN_DIR"]).resolve()} if env.get("CMS_PLUGIN_DIR") else {}),
            plugin_compile_missing=_bool(env, "CMS_PLUGIN_COMPILE_MISSING", mode != "production"),
            smtp_url=env.get("CMS_SMTP_URL", "").strip() or None,
            mail_from=env.get("CMS_MAIL_FROM", "").strip() or "noreply@cms.local",
            mail_undo_s=_int(env, "CMS_MAIL_UNDO_SECONDS", 10, minimum=0),
            quarantine_faults=_int(env, "CMS_QUARANTINE_FAULTS", 5, minimum=1),
            quarantine_window_s=_int(env, "CMS_QUARANTINE_WINDOW_SECONDS", 60, minimum=1),
            panel_budget_ms=_int(env, "CMS_PANEL_BUDGET_MS", 50, minimum=10),
            monitoring=_monitor_settings(env),
        )._checked()

    def with_overrides(self, **changes: Any) -> "Settings":
        """Return a copy with `changes` applied (used by tests)."""
        return replace(self, **changes)

    def flask_config(self) -> dict[str, Any]:
        """Return the Flask config keys these settings imply."""
        return {
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(self.database_url),
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.session_cookie_secure,
            "SESSION_COOKIE_NAME": "cms_session",
            "PERMANENT_SESSION_LIFETIME": self.session_idle_minutes * 60,
            "REMEMBER_COOKIE_HTTPONLY": True,
            "REMEMBER_COOKIE_SAMESITE": "Lax",
            "WTF_CSRF_TIME_LIMIT": None,
            "TESTING": self.env == "testing",
            "MAX_CONTENT_LENGTH": 1024 * 1024,
            "CMS_SETTINGS": self,
        }


def _monitor_settings(env: Mapping[str, str]) -> MonitorSettings:
    from cms.monitoring.settings import MonitorSettings

    return MonitorSettings.from_env(env)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5, "pool_recycle": 1800}
