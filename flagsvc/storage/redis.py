"""Redis connections that fail fast, and one circuit per process that remembers an outage.

Redis is never required: the change broker, the shared snapshot store, rate limits,
auth-failure counts and SDK-key revocations all fall back to this process when it is
unreachable. These pieces make that fallback cheap (one failed attempt per cooldown)
and quiet (one log line per outage).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


def channel_for(url: str, channel: str) -> str:
    """``channel`` namespaced by the Redis database ``url`` names.

    Pub/sub ignores database numbers: ``channel`` on db 0, ``<channel>:db<N>`` otherwise.
    """
    parts = urlsplit(url)
    db = parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    return channel if db in ("", "0") else f"{channel}:db{db}"


class RedisCircuit:
    """Redis reachability for one process: after a failure, skip Redis for a moment.

    Shared by the broker and the snapshot store so an outage is logged once, and a
    request never waits on a dead Redis more than once per ``cooldown``.
    """

    def __init__(self, cooldown: float = 1.0) -> None:
        self.cooldown = cooldown
        self.down = False
        self._retry_at = 0.0

    def available(self) -> bool:
        """Worth trying Redis now."""
        return not self.down or time.monotonic() >= self._retry_at

    def failed(self, what: str, error: Exception) -> None:
        """Record a failure; logs only the first of an outage."""
        if not self.down:
            log.warning("redis unavailable (%s): %s; serving without it", what, error)
        self.down = True
        self._retry_at = time.monotonic() + self.cooldown

    def succeeded(self) -> None:
        """Record a success; logs the end of an outage."""
        if self.down:
            log.warning("redis is back")
        self.down = False


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast (short timeouts, no internal retries): callers fall back."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=2.0,
        socket_keepalive=True,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 0),
    )
