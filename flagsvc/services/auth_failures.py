"""Failed authentications per client address: the brute-force brake.

A credential guess is cheap to send and its answer is a yes/no oracle, so after
``attempts`` failures from one address within ``window_seconds`` that address gets no
answer at all (429) until its oldest failure leaves the moving window: the credential
it sends is not even looked up. Only failures count, and nothing here sleeps.

A credential that authenticated recently in this process is *known*: it skips the
limit entirely (no counter read, so no Redis round trip on the hot path), which also
keeps a service with a valid SDK key working when a neighbour behind the same NAT
address keeps sending a revoked one. Knowing a secret is not trusting it: it is still
looked up (revocation takes effect at once), and a known secret that fails is
forgotten and counted like any other.

Counters live in Redis when ``REDIS_URL`` is set, so every instance sees the same
failures, and in this process otherwise (``services.rate_limits.SharedCounter``: the
``limits`` package's moving window; see ``docs/decisions.md``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flagsvc.domain.errors import AuthenticationError
from flagsvc.observability import metrics
from flagsvc.services.credentials import hash_secret
from flagsvc.services.rate_limits import SharedCounter
from flagsvc.storage.redis import RedisCircuit

log = logging.getLogger(__name__)

NAMESPACE = "auth-failures"
KEY_PREFIX = f"flagsvc:{NAMESPACE}"
DEFAULT_ATTEMPTS = 10
DEFAULT_WINDOW_SECONDS = 60
KNOWN_SECONDS = 600.0  # how long a secret that authenticated skips the limit
KNOWN_MAX = 10_000  # bounds memory; clearing only costs a counter read per secret

Result = TypeVar("Result")


class TooManyFailuresError(Exception):
    """The address failed too often; it may try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications; retry in {retry_after} s")
        self.retry_after = retry_after


def refused(address: str, channel: str, retry_after: int, *, first: bool = True) -> None:
    """The one place a refused (rate-limited) attempt is counted and logged.

    Called once per refused request, admin API, SDK API and UI sign-in alike, so an
    attack shows in ``flagsvc_auth_refused_total``; it is logged when ``first`` (the
    address's first refusal in a window), so a flood of guesses cannot flood the logs.
    """
    metrics.AUTH_REFUSED.labels(channel=channel).inc()
    if first:
        log.warning(
            "auth-failure limit: refused %s attempt from %s (retry in %d s; further "
            "refusals of this address are counted in metrics, not logged, for %d s)",
            channel,
            address,
            retry_after,
            retry_after,
        )


class AuthFailureLimiter:
    """Counts failed authentications per client address and refuses one that failed too often."""

    def __init__(
        self,
        attempts: int = DEFAULT_ATTEMPTS,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        redis_url: str | None = None,
        circuit: RedisCircuit | None = None,
    ) -> None:
        self._failures = SharedCounter(
            attempts, window_seconds, namespace=NAMESPACE, redis_url=redis_url, circuit=circuit
        )
        self._known: dict[str, float] = {}
        self._quiet_until: dict[str, float] = {}  # address -> end of its logged refusal
        self._guard = threading.Lock()

    def authenticate(
        self, address: str, secret: str, channel: str, check: Callable[[], Result]
    ) -> Result:
        """Run ``check`` (it raises ``AuthenticationError`` on a bad secret) behind the limit.

        :param channel: where the attempt came from, for the log (``"sdk"``, ``"ui"`` …).
        :raise TooManyFailuresError: ``address`` failed too often; ``check`` was not run.
        :raise AuthenticationError: what ``check`` raised, after counting it.
        """
        digest = hash_secret(secret)
        if not self._is_known(digest):
            wait = self.retry_after(address)
            if wait:
                refused(address, channel, wait, first=self._first_refusal(address, wait))
                raise TooManyFailuresError(wait)
        try:
            result = check()
        except AuthenticationError:
            self._remember(digest, known=False)
            self.failed(address)
            raise
        self._remember(digest, known=True)
        return result

    def _first_refusal(self, address: str, wait: int) -> bool:
        """True once per address per refusal period: the refusal worth a log line."""
        now = time.monotonic()
        with self._guard:
            if self._quiet_until.get(address, 0.0) > now:
                return False
            if len(self._quiet_until) >= KNOWN_MAX:
                self._quiet_until.clear()
            self._quiet_until[address] = now + wait
            return True

    def retry_after(self, address: str) -> int:
        """Seconds ``address`` must wait before it may authenticate again; 0: it may now."""
        return self._failures.retry_after(address)

    def failed(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        self._failures.add(address)

    def _is_known(self, digest: str) -> bool:
        return self._known.get(digest, 0.0) > time.monotonic()

    def _remember(self, digest: str, *, known: bool) -> None:
        with self._guard:
            if not known:
                self._known.pop(digest, None)
                return
            if len(self._known) >= KNOWN_MAX:
                self._known.clear()
            self._known[digest] = time.monotonic() + KNOWN_SECONDS
