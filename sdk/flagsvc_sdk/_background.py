"""What a client runs off the caller's threads: its HTTP API, the updater, the metrics.

One :class:`Background` per client *per process*: everything here belongs to the
process that built it (threads, the connection pool), so a forked child builds its own
from the same :class:`Settings` and never touches the parent's (``_fork.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ._metrics import MetricsReporter
from ._metrics import Take
from ._sync import Hooks
from ._sync import Updater
from ._transport import SdkApi
from ._transport import Transport
from .stats import Stats

__all__ = ["Background", "Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """The client's options that background work is built from."""

    url: str
    sdk_key: str
    timeout: float
    transport: Transport | None
    stream: bool
    poll_interval: float
    send_metrics: bool
    metrics_interval: float


class Background:
    """The API, the updater thread and the metrics thread of one client in one process."""

    def __init__(self, settings: Settings, hooks: Hooks, take: Take, stats: Stats) -> None:
        self.api = SdkApi(settings.url, settings.sdk_key, settings.timeout, settings.transport)
        self.updater = Updater(
            self.api,
            hooks,
            stream=settings.stream,
            poll_interval=settings.poll_interval,
            stats=stats,
        )
        self.metrics = (
            MetricsReporter(
                self.api,
                take,
                settings.metrics_interval,
                stats,
                paused=lambda: self.updater.refused,
            )
            if settings.send_metrics
            else None
        )
        self.started = False  # never, in a uWSGI master (see _fork.py)

    def start(self) -> None:
        """Start the threads (the updater fetches at once)."""
        self.started = True
        self.updater.start()
        if self.metrics is not None:
            self.metrics.start()

    def stop(self, timeout: float) -> None:
        """Stop within ``timeout`` seconds: the updater (an open stream is cut at once),
        then one last metrics flush with what is left of the time.

        A snapshot request in flight on the updater thread cannot be cut: it ends at its
        own HTTP timeout, and the updater then exits without installing anything.
        """
        deadline = time.monotonic() + timeout
        self.updater.stop(timeout=max(0.0, min(1.0, timeout / 2)))
        if self.metrics is not None:
            self.metrics.stop(timeout=max(0.0, deadline - time.monotonic()))
        self.api.close()
