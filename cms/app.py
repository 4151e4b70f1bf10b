"""The application factory: wires configuration, extensions, blueprints and hooks together."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from cms.config import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    """Build the app from `settings` (default: parsed from the environment) plus Flask config overrides."""
    from cms import cli, errors, monitoring, security
    from cms.app_state import AppState, NavItem
    from cms.auth.passwords import Passwords
    from cms.auth.throttle import make_throttle
    from cms.extensions import csrf, db, login_manager, migrate
    from cms.flags.store import FlagStore, SqlFlagSource
    from cms.ids import IdConverter
    from cms.redis_client import make_redis
    from cms.plugins.breaker import FaultCounter
    from cms.plugins.hostops import host_ops
    from cms.plugins.registry import PluginRegistry
    from cms.plugins.state import load_plugin_state
    from cms.runtime import Runtime

    settings = settings or Settings.from_env()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.url_map.converters["id"] = IdConverter  # every record id in a path (cms.ids)
    app.config.update(settings.flask_config())
    app.config.update(overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "basic"
    login_manager.unauthorized_handler(_unauthorized)

    redis_client = make_redis(settings.redis_url, settings.redis_socket_timeout)
    runtime = Runtime(settings.runtime_config(), host_ops())
    app.extensions["cms"] = AppState(
        settings=settings,
        passwords=Passwords(fast=settings.password_hash_fast),
        throttle=make_throttle(redis_client, settings.login_window_seconds),
        redis=redis_client,
        runtime=runtime,
        # Flags (and, at the same config version, the plugin state) read with their own short
        # connections; the watcher starts per worker (lifecycle).
        flags=FlagStore(SqlFlagSource(lambda: _engine(app), {"plugins": load_plugin_state}),
                        redis_client),
        plugins=PluginRegistry(runtime, settings.plugin_dir,
                               FaultCounter(redis_client, settings.quarantine_faults,
                                            settings.quarantine_window_s)),
        admin_nav=[
            NavItem("Users", "admin.users"),
            NavItem("Agencies", "admin.agencies"),
            NavItem("Plugins", "admin.plugins"),
            NavItem("Feature flags", "admin.flags"),
            NavItem("Audit log", "admin.audit"),
            NavItem("Health", "admin.health"),
            NavItem("Alerts", "admin.alerts_page"),
            NavItem("API tokens", "admin.tokens"),
        ],
    )

    from cms.plugins.courier import for_app as courier_for_app

    app.extensions["cms"].courier = courier_for_app(app)
    security.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    monitoring.init_app(app)  # before the admin blueprint: it adds /admin/health and /admin/alerts
    _register_blueprints(app)
    _register_template_helpers(app)
    return app


def _migrations_dir() -> Any:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _engine(app: Flask) -> Any:
    from cms.extensions import db

    with app.app_context():
        return db.engine


def _unauthorized() -> Response:
    from cms.errors import error_response, wants_json

    if wants_json():
        return error_response(401, "unauthorized", "Log in required", "Log in to continue.")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def _register_blueprints(app: Flask) -> None:
    from cms.admin import bp as admin_bp
    from cms.api_docs import bp as api_docs_bp
    from cms.auth import bp as auth_bp
    from cms.bookings import bp as bookings_bp
    from cms.clients import bp as clients_bp
    from cms.flags import views as _flag_views  # noqa: F401  (its routes register on admin_bp)
    from cms.flags.api import bp as flags_api_bp
    from cms.health import bp as health_bp
    from cms.plugins import bp as plugins_bp
    from cms.plugins.admin_api import bp as plugins_admin_api_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(clients_bp)
    app.register_blueprint(bookings_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(health_bp)
    app.register_blueprint(plugins_bp)
    app.register_blueprint(plugins_admin_api_bp)
    app.register_blueprint(flags_api_bp)
    app.register_blueprint(api_docs_bp)


def _register_template_helpers(app: Flask) -> None:
    from cms.app_state import state
    from cms.models import BookingStatus, Cabin

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {
            "admin_nav": state().admin_nav,
            "BookingStatus": BookingStatus,
            "Cabin": Cabin,
        }

    @app.template_filter("datetime")
    def _format_datetime(value: Any) -> str:
        return value.strftime("%d %b %Y %H:%M UTC") if value else ""

    @app.template_filter("date")
    def _format_date(value: Any) -> str:
        return value.strftime("%a %d %b %Y") if value else ""

    from cms.phones import readable_phone

    app.add_template_filter(readable_phone, "phone")

    from plugin_sdk.ui import clock_text, timer_seconds

    app.add_template_filter(timer_seconds, "timer_seconds")
    app.add_template_filter(clock_text, "clock_text")
