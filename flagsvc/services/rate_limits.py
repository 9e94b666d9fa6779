"""Moving-window counters shared by every instance through Redis, per process without it.

The auth-failure limit counts failed guesses per client address
(``services.auth_failures``); the enrolment limit counts opt-in enrolments and
departures per SDK key. Both are the ``limits`` package's moving window, on Redis when
``REDIS_URL`` is set. Redis is never required: while it is unreachable each process
counts on its own (a weaker brake for the outage, never an error), and the
``RedisCircuit`` makes that cost one failed Redis attempt per cooldown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from flagsvc.storage.redis import RedisCircuit
from flagsvc.storage.redis import redis_client

Result = TypeVar("Result")


class SharedCounter:
    """At most ``amount`` hits per key in any ``window_seconds``, counted where it can be."""

    def __init__(
        self,
        amount: int,
        window_seconds: int,
        *,
        namespace: str,
        redis_url: str | None = None,
        circuit: RedisCircuit | None = None,
    ) -> None:
        self.limit = RateLimitItemPerSecond(amount, window_seconds, namespace=namespace)
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = _shared_limiter(redis_url, namespace) if redis_url else None
        self._circuit = circuit or RedisCircuit()

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may be counted again; 0: it may now."""
        stats = self._call(lambda limiter: limiter.get_window_stats(self.limit, key))
        if stats.remaining > 0:
            return 0
        return max(1, math.ceil(stats.reset_time - time.time()))

    def add(self, key: str) -> bool:
        """Count one hit for ``key``; False (and not counted) when its window is full."""
        return self._call(lambda limiter: limiter.hit(self.limit, key))

    def take(self, key: str) -> int:
        """Count one hit for ``key``; 0 if counted, else the seconds to wait (not counted)."""
        return 0 if self.add(key) else self.retry_after(key)

    def _call(self, use: Callable[[MovingWindowRateLimiter], Result]) -> Result:
        """Use Redis when configured and reachable, else this process's counters."""
        if self._shared is not None and self._circuit.available():
            try:
                result = use(self._shared)
            except redis.RedisError as error:
                self._circuit.failed(f"{self.limit.namespace} limit", error)
            else:
                self._circuit.succeeded()
                return result
        return use(self._local)


def _shared_limiter(redis_url: str, namespace: str) -> MovingWindowRateLimiter:
    """A moving-window limiter on Redis, with the service's fail-fast client settings."""
    pool = redis_client(redis_url).connection_pool
    storage = RedisStorage(redis_url, connection_pool=pool, key_prefix=f"flagsvc:{namespace}")
    return MovingWindowRateLimiter(storage)
