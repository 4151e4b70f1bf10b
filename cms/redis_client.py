"""The optional Redis connection: a client with short timeouts, or None when not configured."""

from __future__ import annotations

import logging

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)


def make_redis(url: str | None, socket_timeout: float) -> redis.Redis | None:
    """Return a client for `url` that never blocks a request for long, or None without a URL."""
    if not url:
        return None
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        decode_responses=True,
        # No retries with back-off: a request must never wait on a sick Redis for long.
        retry=Retry(NoBackoff(), 0),
    )


def ping(client: redis.Redis | None) -> tuple[bool, str]:
    """Return (ok, detail) for the health check; never raises."""
    if client is None:
        return False, "not configured"
    try:
        client.ping()
    except redis.RedisError as error:
        return False, f"{type(error).__name__}: {error}"
    return True, "ok"
