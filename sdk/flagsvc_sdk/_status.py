"""How a client's :class:`~flagsvc_sdk.Status` moves, from what its updater learns.

========================================  ===========================================
what happened                             status
========================================  ===========================================
a file snapshot loaded at start           ``stale`` (until the service confirms it)
the service answered (200 or 304), or a   ``ready``
stream ``hello`` confirmed the version
the service could not be reached, or      ``stale`` with a snapshot, ``error`` without;
answered an error                         ``fatal`` stays ``fatal``
the service refused the SDK key           ``fatal``
========================================  ===========================================

Moves are serialised and listeners are told in the order the moves happened (under
the board's lock), so a listener's last word is always the current status.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .events import Status
from .events import StatusChange

__all__ = ["StatusBoard"]


class StatusBoard:
    """The status of one client; ``notify`` is told of every move."""

    def __init__(self, notify: Callable[[StatusChange], None]) -> None:
        self._status = Status.INITIALIZING
        self._notify = notify
        self._lock = threading.RLock()

    @property
    def status(self) -> Status:
        """The status now."""
        return self._status

    def loaded_from_file(self) -> None:
        """A bootstrap or cache snapshot answers, unconfirmed."""
        self._move(Status.STALE, None, only_from=Status.INITIALIZING)

    def fresh(self) -> None:
        """The service confirmed the snapshot held is current."""
        self._move(Status.READY, None)

    def failed(self, message: str, *, holding: bool) -> None:
        """The service could not be reached or answered an error."""
        if self._status is not Status.FATAL:
            self._move(Status.STALE if holding else Status.ERROR, message)

    def refused(self, message: str) -> None:
        """The service refused the SDK key."""
        self._move(Status.FATAL, message)

    def after_fork(self) -> None:
        """In a forked child: a new lock (the parent's may have been held at the fork)."""
        self._lock = threading.RLock()

    def _move(self, status: Status, message: str | None, only_from: Status | None = None) -> None:
        with self._lock:
            previous = self._status
            if previous is status or (only_from is not None and previous is not only_from):
                return
            self._status = status
            self._notify(StatusChange(status, previous, message))
