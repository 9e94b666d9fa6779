"""The background updater: stream first, polling while the stream is down.

One daemon thread. It fetches the snapshot at once, then listens on the change stream;
``hello`` and ``change`` events that announce a version other than the one held trigger
``GET /sdk/v1/snapshot`` with ``If-None-Match``. (Other rather than newer: a service whose
database was recreated restarts its counter, and a 304 costs next to nothing.) When the
stream fails, is refused or stays silent past :data:`~._streaming.SILENCE_TIMEOUT`, the
thread waits a jittered exponential backoff, and at least the ``Retry-After`` of a
refusal (an instance at its stream limit answers 503 + Retry-After), before reconnecting,
and polls the snapshot every ``poll_interval`` seconds meanwhile. With ``stream=False``
it only polls.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ._backoff import Backoff
from ._store import Loaded
from ._streaming import SILENCE_TIMEOUT
from ._streaming import Signal
from ._streaming import interpret
from ._transport import SdkApi
from .errors import FetchError
from .stats import Stats

MAX_RETRY_AFTER_SECONDS = 300.0
"""The longest ``Retry-After`` the stream honours (polling goes on meanwhile)."""

__all__ = ["Hooks", "Updater"]

log = logging.getLogger("flagsvc_sdk")


@dataclass(frozen=True, slots=True)
class Hooks:
    """How the updater reaches the client's state.

    ``held`` returns the snapshot in use; ``install(raw, etag)`` parses, validates and
    swaps in a download (raising ``FetchError`` to refuse it); ``attempted(ok)`` is told
    the outcome of every fetch (the client's readiness hangs on it).
    """

    held: Callable[[], Loaded | None]
    install: Callable[[bytes, str | None], None]
    attempted: Callable[[bool], None]


class Updater:
    """Keeps a client's snapshot current from a background thread."""

    def __init__(
        self, api: SdkApi, hooks: Hooks, *, stream: bool, poll_interval: float, stats: Stats
    ) -> None:
        self._api, self._hooks = api, hooks
        self._stream, self._poll_interval, self._stats = stream, poll_interval, stats
        self.backoff = Backoff()
        self.silence_timeout = SILENCE_TIMEOUT
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._next_poll = 0.0
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="flagsvc-updater", daemon=True)

    def start(self) -> None:
        """Start the thread (it fetches at once)."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the thread, interrupting an open stream; wait up to ``timeout`` seconds."""
        self._stopped.set()
        self._wake.set()
        self._api.abort_stream()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def poke(self) -> None:
        """Ask for a fetch soon (after an enrolment) without blocking the caller."""
        self._next_poll = 0.0
        self._wake.set()

    def refresh(self) -> bool:
        """Fetch the snapshot and install it if it changed; ``False`` if that failed."""
        self._next_poll = time.monotonic() + self._poll_interval
        held = self._hooks.held()
        try:
            self._stats.fetches += 1
            fetched = self._api.fetch_snapshot(held.etag if held is not None else None)
            if self._stopped.is_set():  # closed while the request was in flight
                return False
            if fetched.raw is not None:
                self._hooks.install(fetched.raw, fetched.etag)
            ok = True
        except Exception as exc:  # FetchError, httpx.HTTPError, or a custom transport's bug
            if self._stopped.is_set():
                return False
            self._stats.fetch_failures += 1
            self._report("snapshot fetch failed", exc)
            ok = False
        self._recovered(ok)
        self._hooks.attempted(ok)
        return ok

    def _run(self) -> None:
        try:
            self.refresh()
            while not self._stopped.is_set():
                if self._stream:
                    asked = self._stream_once()
                    self._wait_polling(max(self.backoff.next_delay(), asked))
                else:
                    self._wait_polling(math.inf)
        except Exception:  # a bug here must not kill the app; evaluation goes on
            log.exception("flagsvc: the updater thread stopped unexpectedly")
            self._hooks.attempted(False)

    def _stream_once(self) -> float:
        """Follow the stream until it ends; the least wait the service asked for (0: none)."""
        try:
            with self._api.stream(self.silence_timeout) as events:
                for event in events:
                    if self._stopped.is_set():
                        return 0.0
                    self._on_signal(interpret(event))
            log.info("flagsvc: the service closed the change stream")
        except Exception as exc:  # FetchError, httpx.HTTPError, or a custom transport's bug
            self._stats.stream_failures += 1
            if not self._stopped.is_set():
                self._report("change stream failed; polling until it reconnects", exc)
            if isinstance(exc, FetchError) and exc.retry_after is not None:
                return min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)
        return 0.0

    def _on_signal(self, signal: Signal) -> None:
        if signal.retry_ms is not None:
            self.backoff.base = min(max(signal.retry_ms / 1000, 0.1), self.backoff.cap)
        if signal.kind == "hello":
            self._stats.stream_connects += 1
            self.backoff.reset()
            self._recovered(True)
        if signal.announces_version:
            held = self._hooks.held()
            if signal.version is None or held is None or signal.version != held.version:
                self.refresh()

    def _wait_polling(self, seconds: float) -> None:
        """Sleep ``seconds`` (until stopped), polling whenever a poll falls due."""
        deadline = time.monotonic() + seconds
        while not self._stopped.is_set():
            now = time.monotonic()
            if now >= self._next_poll:
                self.refresh()
                continue
            if now >= deadline:
                return
            self._wake.wait(min(deadline, self._next_poll) - now)
            self._wake.clear()

    def _report(self, what: str, exc: Exception) -> None:
        """Warn on the first failure of a run of failures, then only at debug level."""
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "flagsvc: %s: %s: %s", what, type(exc).__name__, exc)
        self._failing = True

    def _recovered(self, ok: bool) -> None:
        if ok and self._failing:
            log.info("flagsvc: connected to the service again")
            self._failing = False
