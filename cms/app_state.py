"""Per-app objects (the registry the app owns), reached through `state()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app, g, request
from flask_login import current_user

from cms.audit import Actor

if TYPE_CHECKING:
    import redis

    from cms.auth.passwords import Passwords
    from cms.auth.throttle import LoginThrottle
    from cms.config import Settings
    from cms.flags.store import FlagStore
    from cms.plugins.courier import Courier
    from cms.plugins.registry import PluginRegistry
    from cms.runtime import Runtime


@dataclass(frozen=True)
class NavItem:
    """A link in the admin navigation; later areas (flags, plugins, health) append theirs."""

    label: str
    endpoint: str


@dataclass
class AppState:
    """What the app builds once at start and shares across requests."""

    settings: Settings
    passwords: Passwords
    throttle: LoginThrottle
    redis: redis.Redis | None
    #: The plugin runtime; its engine and ticker start per worker (cms.lifecycle), never here.
    runtime: Runtime
    #: This worker's feature flags: a snapshot in memory, kept current by a watcher thread.
    flags: FlagStore
    #: The built plugins this app can run (read lazily, per process).
    plugins: PluginRegistry
    admin_nav: list[NavItem] = field(default_factory=list)
    #: Hands due outbox mail to the relay, on its own thread per worker; None without a relay.
    courier: "Courier | None" = None


def state() -> AppState:
    """Return the current app's state."""
    return current_app.extensions["cms"]  # type: ignore[no-any-return]


def client_ip() -> str | None:
    """The client's address (after ProxyFix, when trusted proxies are configured)."""
    return request.remote_addr


def current_actor() -> Actor:
    """The logged-in user as an Actor, with this request's IP and id."""
    return Actor.for_user(current_user, client_ip(), g.get("request_id"))  # type: ignore[arg-type]
