"""The audit head as this process knows it, so an SDK poll needs no database round trip.

Every SDK request used to read ``max(seq)`` to learn whether anything changed: on a
304 that round trip was most of the work. A process learns of every change sooner
than that: its own commits through ``Database.on_write_commit``, the other processes'
through the broker (Redis pub/sub). ``HeadTracker`` keeps the newest head it heard
and serves it without asking the database.

What bounds staleness when a broker message is lost (Redis down, a dropped
connection, no Redis and a second process writing): the tracker trusts what it heard
for ``max_age`` seconds (``FLAGSVC_HEAD_POLL_SECONDS``, 2 s) after it last read the head
from the database; the first request after that reads it again (one request: the
others keep serving the known head meanwhile). So a change reaches every instance's
304 path within ``max_age`` plus one read, with or without the broker, and the
database sees at most one head read per ``max_age`` per process however many SDKs
poll. A read that fails (the database is down) raises, and the caller falls back on
its cache (stale-if-error), as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HeadSource = Callable[[], int]


class HeadTracker:
    """The newest audit head heard (own commits, broker) and confirmed by the database."""

    def __init__(
        self,
        source: HeadSource,
        max_age: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.max_age = max_age
        self._clock = clock
        self._head = -1  # unknown until the first read
        self._confirmed_at = float("-inf")
        self._lower_seen: int | None = None
        self._reading = threading.Lock()
        self._guard = threading.Lock()
        self.reads = 0
        """Head reads from the database (tests and benchmarks count them)."""

    @property
    def head(self) -> int:
        """The newest head known (-1: none yet), without asking anyone."""
        return self._head

    def heard(self, head: int) -> None:
        """A head announced after a commit (ours, or another instance's via the broker).

        Only ever moves forward: an announcement never takes back a newer head.
        """
        with self._guard:
            if head > self._head:
                self._head = head

    def known(self) -> int | None:
        """The head if it can be served without a read: confirmed within ``max_age``, or
        being read by another caller right now (who would serve the known head meanwhile
        in ``current`` too). Else None: the caller's read is due.

        Without the second case, every SDK poll arriving during the read (the tens a
        busy instance answers in those milliseconds) took the slow path at once.
        """
        if self._clock() - self._confirmed_at < self.max_age:
            return self._head
        if self._reading.locked() and self._head >= 0:
            return self._head
        return None

    def current(self) -> int:
        """The head to serve now: the known one while confirmed within ``max_age``.

        Otherwise reads the database (one caller at a time; the others keep the known
        head for the length of that read).

        :raise: what ``source`` raises (the database is unreachable).
        """
        if self._clock() - self._confirmed_at < self.max_age:
            return self._head
        if not self._reading.acquire(blocking=False):
            if self._head >= 0:
                return self._head
            self._reading.acquire()  # nothing known yet: wait for that read
        try:
            if self._clock() - self._confirmed_at < self.max_age:
                return self._head  # read by the caller we waited for
            return self.confirm(self.source())
        finally:
            self._reading.release()

    def confirm(self, head: int) -> int:
        """Record ``head`` as read from the database now; returns the head to serve.

        A lower head than known is believed on its second reading in a row (a database
        reset or restored), so one read racing a fresh commit never moves it back.
        """
        with self._guard:
            self.reads += 1
            self._confirmed_at = self._clock()
            if head >= self._head or self._lower_seen == head:
                self._head, self._lower_seen = head, None
            else:
                self._lower_seen = head
            return self._head
