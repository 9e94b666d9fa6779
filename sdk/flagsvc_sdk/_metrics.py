"""Evaluation counts, sent in batches.

Counting itself happens on the hot path, in each flag's
:class:`~flagsvc_sdk._checks.Tally`: a plain attribute incremented inline, with no call
and no lock (exact on GIL builds; on a free-threaded build racing increments may be
lost, see ``Tally``). Every ``interval`` seconds (and on ``close``) the reporter takes
the counts since the last batch (:class:`~flagsvc_sdk._checks.Counters`) and POSTs
``{"evaluations": [{"flag", "count", "last_evaluated_at"}]}`` to
``/sdk/v1/metrics``, each entry with ``"reasons": {"COHORT": n}`` when ``n`` of its
evaluations were answered on through an early-access cohort (the service measures
early-access reach from it), and ``"early_adopters"``: the users they were for, each
key hashed here, in the metrics thread (:func:`adopter_hash`): raw user keys never
leave the process, and the hot path only notes a key in a dict (``Tally.adopters``).
``last_evaluated_at`` is the end of the batch window (the take time), so it is late
by at most ``interval``: reading a clock per evaluation would cost more than the count.
A failed POST is logged and the batch dropped: metrics never queue up, retry or block.
While the service refuses the SDK key nothing is sent (the counts are kept for when it
accepts the key again).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

from ._checks import Taken
from ._threads import BackgroundThread
from ._transport import SdkApi
from .engine import Counted
from .stats import Stats

__all__ = [
    "MAX_ADOPTERS",
    "MAX_BATCH",
    "MAX_COUNT",
    "MetricsReporter",
    "adopter_hash",
    "batch_body",
]

log = logging.getLogger("flagsvc_sdk")

MAX_BATCH = 1_000
"""Most flags in one POST (``flagsvc.services.sdk_metrics.MAX_BATCH``)."""
MAX_COUNT = 1_000_000_000
"""Largest count the service accepts for one flag in one batch."""
MAX_ADOPTERS = 10_000
"""Most hashed early-adopter keys one entry carries (the service's limit); more in one
batch are left out (``Stats.adopters_dropped``): the distinct count is then a floor."""


def adopter_hash(flag_key: str, user_key: str) -> str:
    """What the service learns of an early adopter: 64 bits of BLAKE2b over the flag and
    user keys, 16 hex digits. Enough to count distinct users (a collision among a
    billion is unlikely), not the key itself; salted by the flag, so one user's hashes
    on two flags cannot be matched. A guessable key (an email) can still be confirmed
    by whoever knows the flag key: the service keeps only HyperLogLog registers."""
    return hashlib.blake2b(f"{flag_key}\0{user_key}".encode(), digest_size=8).hexdigest()


Take = Callable[[], dict[str, Taken]]
"""Return the evaluations per flag since the previous call."""


def batch_body(
    counts: dict[str, Taken], at: datetime, stats: Stats | None = None
) -> dict[str, object]:
    """Build the JSON body of ``POST /sdk/v1/metrics`` (flags sorted, for stable output).

    A count above :data:`MAX_COUNT` (the service's limit) is clamped to it; early
    adopters beyond :data:`MAX_ADOPTERS` per flag are counted in ``stats`` and left out.
    """
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "evaluations": [
            _entry(flag_key, taken, stamp, stats)
            for flag_key, taken in sorted(counts.items())
            if taken.evaluations > 0
        ]
    }


def _entry(flag_key: str, taken: Taken, stamp: str, stats: Stats | None) -> dict[str, object]:
    entry: dict[str, object] = {
        "flag": flag_key,
        "count": min(taken.evaluations, MAX_COUNT),
        "last_evaluated_at": stamp,
    }
    if taken.cohort > 0:
        entry["reasons"] = {Counted.COHORT.value: min(taken.cohort, taken.evaluations, MAX_COUNT)}
    if taken.adopters:
        kept = taken.adopters[:MAX_ADOPTERS]
        entry["early_adopters"] = [adopter_hash(flag_key, user_key) for user_key in kept]
        if stats is not None:
            stats.adopters_dropped += len(taken.adopters) - len(kept)
    return entry


class MetricsReporter:
    """Flushes evaluation counts from a daemon thread every ``interval`` seconds."""

    def __init__(
        self,
        api: SdkApi,
        take: Take,
        interval: float,
        stats: Stats,
        paused: Callable[[], bool] = lambda: False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api, self._take, self._interval = api, take, interval
        self._stats, self._paused, self._clock = stats, paused, clock
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # one flush at a time (timer vs close)
        self._thread = BackgroundThread(self._run, "flagsvc-metrics")

    def start(self) -> None:
        """Start the periodic flush."""
        self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Send the counts gathered since the last flush; ``True`` if all were accepted.

        Batches hold at most :data:`MAX_BATCH` flags (the service's limit). ``timeout``
        bounds each request (default: the client's HTTP timeout).
        """
        with self._lock:
            return self._send(timeout)

    def stop(self, timeout: float) -> None:
        """Stop the timer and send what is left, all within ``timeout`` seconds.

        The final flush is one attempt whose request gets what is left of ``timeout``;
        if the timer's own flush still holds the lock by then, that one is the last.
        """
        deadline = time.monotonic() + timeout
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                self._send(max(0.05, deadline - time.monotonic()))
            finally:
                self._lock.release()

    def _send(self, timeout: float | None) -> bool:
        if self._paused():  # the key is refused: a request would only fail (counts wait)
            return False
        counts = sorted(self._take().items())
        stamp = self._clock()
        ok = True
        for start in range(0, len(counts), MAX_BATCH):
            body = batch_body(dict(counts[start : start + MAX_BATCH]), stamp, self._stats)
            sent = self._api.post("/sdk/v1/metrics", body, timeout=timeout)
            self._stats.metrics_sent += sent
            self._stats.metrics_dropped += not sent
            ok = ok and sent
        return ok

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self.flush()
            except Exception:  # never let a metrics bug take a thread down noisily
                log.exception("flagsvc: metrics flush failed")
