"""One SSE stream's logic: hello, then the environment's new content version whenever it
changes, never for a change elsewhere."""

from __future__ import annotations

import logging
import time

from flagsvc.delivery.broker import Subscription
from flagsvc.delivery.cache import SessionFactory
from flagsvc.delivery.cache import SnapshotCache

log = logging.getLogger(__name__)


class EnvironmentWatch:
    """What one SDK stream announces: its environment's content version, on change only.

    Comparing content versions (not raw audit heads) is what keeps a change in
    staging from sending every production SDK to re-download its snapshot.
    """

    def __init__(
        self,
        cache: SnapshotCache,
        sessions: SessionFactory,
        environment: str,
        subscription: Subscription,
    ) -> None:
        self.cache = cache
        self.sessions = sessions
        self.environment = environment
        self.subscription = subscription
        self.sent: int | None = None
        self._watching = False

    def hello(self) -> int:
        """The version to greet with (subscribe first, so nothing falls between)."""
        self.sent = self.cache.get(self.sessions, self.environment).version
        if not self._watching:
            self._watching = True
            self.cache.watch(self.environment, +1)
        return self.sent

    def close(self) -> None:
        """End the subscription and the cache's interest in the environment; idempotent."""
        self.subscription.close()
        if self._watching:
            self._watching = False
            self.cache.watch(self.environment, -1)

    def next_change(self, timeout: float) -> int | None:
        """The environment's new version, or None after ``timeout`` (or when closed)."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0 and not self.subscription.closed:
            head = self.subscription.wait(remaining)
            if head is None:
                continue
            version = self._version_at(head)
            if version != self.sent:
                self.sent = version
                return version
        return None

    def _version_at(self, head: int) -> int:
        try:
            return self.cache.get(self.sessions, self.environment, at_least=head).version
        except Exception as error:  # database down: announce, the SDK's fetch will tell
            log.warning("stream for %s cannot check version %s: %s", self.environment, head, error)
            return head
