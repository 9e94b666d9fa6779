"""The updater: the change stream on one thread, polling on another.

``flagsvc-updater`` fetches the snapshot at once, then polls ``GET /sdk/v1/snapshot``
(with ``If-None-Match``) every ``poll_interval`` seconds *unless the stream is
delivering*: it said ``hello`` and was heard from (an event or a keep-alive comment)
within one and a half of the keep-alive intervals the service announced. So a stream
that is accepted but silent (a buffering proxy, a half-open connection) never stops
polling. ``flagsvc-stream`` follows ``GET /sdk/v1/stream``: ``hello`` and ``change``
events announcing a version other than the one held trigger a fetch (other, not only
newer: a recreated database restarts its counter, and a 304 costs next to nothing). A
stream silent for three keep-alive intervals is dead; a failed or ended stream wakes the
poller at once and is reconnected after a jittered exponential backoff, and never
sooner than a refusal's ``Retry-After`` (an instance at its stream limit answers 503).
With ``stream=False`` there is only the poller.

A refused SDK key (401, 403) is fatal: one ERROR naming the key by its prefix, the
stream stops, metrics stop, and only a poll every few minutes checks whether the key
works again (:data:`REFUSED_RETRY`), so a wrong key never trips the service's limit
on failed authentications for its neighbours on the same address.

Streaming and polling code lives here and in ``_streaming.py``, ``_sse.py``; what the
client does with a download is behind :class:`Hooks`.
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
from ._streaming import Signal
from ._streaming import Silence
from ._streaming import default_silence
from ._streaming import interpret
from ._threads import BackgroundThread
from ._transport import Fetched
from ._transport import SdkApi
from .errors import FetchError
from .errors import PatchRefusedError
from .stats import Stats

MAX_RETRY_AFTER_SECONDS = 300.0
"""The longest ``Retry-After`` honoured (polling goes on meanwhile, if it may)."""
REFUSED_RETRY = (60.0, 600.0)
"""Seconds before checking a refused key again: the first wait, and the longest."""

__all__ = ["Hooks", "Updater"]

log = logging.getLogger("flagsvc_sdk")


@dataclass(frozen=True, slots=True)
class Hooks:
    """How the updater reaches the client's state.

    ``held`` returns the snapshot in use; ``install(fetched)`` parses, validates and
    swaps in a download, a full snapshot or a patch to the one held (raising
    ``FetchError`` to refuse it, :class:`~.errors.PatchRefusedError` for a patch that does
    not apply: the updater then fetches the full snapshot). The rest report what the
    service said: ``fresh`` (it confirmed the snapshot held is current), ``failed`` (it
    could not be reached or answered an error), ``refused`` (it refused the key).
    """

    held: Callable[[], Loaded | None]
    install: Callable[[Fetched], None]
    fresh: Callable[[], None]
    failed: Callable[[str], None]
    refused: Callable[[str], None]


class Updater:
    """Keeps a client's snapshot current from two background threads."""

    def __init__(
        self, api: SdkApi, hooks: Hooks, *, stream: bool, poll_interval: float, stats: Stats
    ) -> None:
        self._api, self._hooks = api, hooks
        self._poll_interval, self._stats = poll_interval, stats
        self.backoff = Backoff()  # stream reconnects
        self._refusals = Backoff(*REFUSED_RETRY, jitter=0.5)
        self.silence: Silence = default_silence()  # until a hello announces the interval
        self._stopped = threading.Event()
        self._wake = threading.Event()  # the poller: a poke, stream trouble, or stop
        self._accepted = threading.Event()  # the key is not refused: the stream may run
        self._accepted.set()
        self._first_fetch = threading.Event()
        self._fetching = threading.Lock()  # one fetch at a time (poller vs stream)
        self._next_poll = 0.0
        self._poked = False
        self._failing = False
        self._hello = False  # the open stream said hello
        self._heard_at = -math.inf  # when the open stream last sent a line
        self.threads = [BackgroundThread(self._poll, "flagsvc-updater")]
        if stream:
            self.threads.append(BackgroundThread(self._follow, "flagsvc-stream"))

    @property
    def refused(self) -> bool:
        """The service refused the SDK key at the last attempt."""
        return not self._accepted.is_set()

    def start(self) -> None:
        """Start the threads (the poller fetches at once)."""
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the threads, cutting an open stream; wait up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._stopped.set()
        self._wake.set()
        self._accepted.set()
        self._first_fetch.set()
        self._api.abort_stream()
        for thread in self.threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def poke(self) -> None:
        """Ask for a fetch now, stream or not (after an enrolment), without blocking."""
        if not self.refused:
            self._poked = True
            self._next_poll = 0.0
            self._wake.set()

    def delivering(self) -> bool:
        """The stream said hello and was heard from recently: polls may rest."""
        return self._hello and time.monotonic() - self._heard_at <= self.silence.delivering_for

    def refresh(self) -> bool:
        """Fetch the snapshot and install it if it changed; ``False`` if that failed."""
        with self._fetching:
            if self._stopped.is_set():
                return False
            self._next_poll = time.monotonic() + self._poll_interval
            held = self._hooks.held()
            try:
                self._stats.fetches += 1
                fetched = self._api.fetch_snapshot(
                    held.etag if held is not None else None,
                    held.patch_base if held is not None else None,
                )
                if self._stopped.is_set():  # closed while the request was in flight
                    return False
                if fetched.raw is not None:
                    self._install(fetched)
            except Exception as exc:  # FetchError, httpx.HTTPError, or a custom transport's bug
                if not self._stopped.is_set():
                    self._stats.fetch_failures += 1
                    self._failed("snapshot fetch failed", exc)
                return False
            self._succeeded()
            return True

    def _install(self, fetched: Fetched) -> None:
        """Install a download; a patch that does not apply (a gap in the versions, or
        content that contradicts the snapshot held) is dropped for the full snapshot."""
        try:
            self._hooks.install(fetched)
        except PatchRefusedError as refused:
            self._stats.patches_refused += 1
            log.info("flagsvc: %s; fetching the whole snapshot", refused)
            self._stats.fetches += 1
            full = self._api.fetch_snapshot(None)
            if full.raw is not None and not self._stopped.is_set():
                self._hooks.install(full)

    # --- the poller -----------------------------------------------------------------------

    def _poll(self) -> None:
        try:
            self.refresh()
            self._first_fetch.set()
            while self._sleep_until_poll():
                poked, self._poked = self._poked, False
                if self.delivering() and not poked:
                    self._next_poll = time.monotonic() + self._poll_interval
                else:
                    self.refresh()
        except Exception:  # a bug here must not kill the app; evaluation goes on
            log.exception("flagsvc: the updater thread stopped unexpectedly")
            self._hooks.failed("the updater thread stopped")

    def _sleep_until_poll(self) -> bool:
        """Wait until a poll falls due (or a poke); ``False`` once stopped."""
        while not self._stopped.is_set():
            wait = self._next_poll - time.monotonic()
            if wait <= 0:
                return True
            self._wake.wait(wait)
            self._wake.clear()  # next_poll is read again after this: no poke is lost
        return False

    # --- the stream -----------------------------------------------------------------------

    def _follow(self) -> None:
        self._first_fetch.wait()  # the poller's first fetch answers hello's version
        try:
            while not self._stopped.is_set():
                self._accepted.wait()  # a refused key: only the poller checks, slowly
                if self._stopped.is_set():  # (stop() wakes every wait)
                    return
                asked = self._stream_once()
                if asked is not None:
                    self._stopped.wait(max(self.backoff.next_delay(), asked))
        except Exception:  # a bug here must not kill the app; polling goes on
            log.exception("flagsvc: the stream thread stopped unexpectedly")

    def _stream_once(self) -> float | None:
        """Follow the stream until it ends: the least wait before reconnecting (the
        service's ``Retry-After``, or 0), or ``None`` to reconnect at once."""
        read_timeout = self.silence.dead_after
        try:
            with self._api.stream(read_timeout, self._heard) as events:
                for event in events:
                    if self._stopped.is_set():
                        return 0.0
                    if self._on_signal(interpret(event), read_timeout):
                        return None
            log.info("flagsvc: the service closed the change stream")
        except Exception as exc:  # FetchError, httpx.HTTPError, or a custom transport's bug
            if self._stopped.is_set():
                return 0.0
            self._stats.stream_failures += 1
            if isinstance(exc, FetchError) and exc.key_refused:
                self._refuse(exc)
                return 0.0
            self._report("change stream failed; polling until it reconnects", exc)
            if isinstance(exc, FetchError) and exc.retry_after is not None:
                return min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)
        finally:
            self._hello = False
            self.poke()  # the service may be gone, or have changed while we were away
        return 0.0

    def _heard(self) -> None:
        self._heard_at = time.monotonic()

    def _on_signal(self, signal: Signal, read_timeout: float) -> bool:
        """Act on one event; ``True`` to reconnect at once (a longer keep-alive)."""
        if signal.retry_ms is not None:
            self.backoff.base = min(max(signal.retry_ms / 1000, 0.1), self.backoff.cap)
        if signal.kind == "hello":
            self._stats.stream_connects += 1
            self.backoff.reset()
            self._hello = True
            if signal.keepalive is not None:
                self.silence = Silence(signal.keepalive)
                if self.silence.dead_after > read_timeout:
                    log.info(
                        "flagsvc: the service sends keep-alives every %g s; reconnecting "
                        "the stream to wait that long",
                        signal.keepalive,
                    )
                    return True
        if signal.announces_version:
            held = self._hooks.held()
            if signal.version is None or held is None or signal.version != held.version:
                self.refresh()
            elif signal.kind == "hello":
                self._succeeded()  # the service confirmed the version held
        return False

    # --- outcomes -------------------------------------------------------------------------

    def _succeeded(self) -> None:
        if self.refused:
            log.info("flagsvc: the service accepts the SDK key %s again", self._api.key_hint)
            self._refusals.reset()
            self._accepted.set()
        if self._failing:
            log.info("flagsvc: connected to the service again")
            self._failing = False
        self._hooks.fresh()

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, FetchError) and exc.key_refused:
            self._refuse(exc)
            return
        if isinstance(exc, FetchError) and exc.retry_after is not None:
            wait = min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)
            self._next_poll = max(self._next_poll, time.monotonic() + wait)
        self._report(what, exc)
        self._hooks.failed(f"{what}: {type(exc).__name__}: {exc}")

    def _refuse(self, exc: FetchError) -> None:
        """The key was refused: say so once, then check again only every few minutes."""
        if not self.refused:
            log.error(
                "flagsvc: the service refused the SDK key %s (%s). Check that it is a key "
                "of this environment and was not revoked; answering from what is held and "
                "checking again every few minutes",
                self._api.key_hint,
                exc,
            )
        self._accepted.clear()
        self._next_poll = time.monotonic() + self._refusals.next_delay()
        self._hooks.refused(f"SDK key {self._api.key_hint} refused: {exc}")

    def _report(self, what: str, exc: Exception) -> None:
        """Warn on the first failure of a run of failures, then only at debug level."""
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "flagsvc: %s: %s: %s", what, type(exc).__name__, exc)
        self._failing = True
