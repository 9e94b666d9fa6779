"""gunicorn's gevent worker, with keep-alive connections taking turns.

gevent switches greenlets only when one would block. After answering a request on a
keep-alive connection, gunicorn's gevent worker reads the next one; when the client has
already sent it (a busy SDK, a load balancer's pooled connection, pipelining), that read
succeeds at once and the greenlet answers it without handing the event loop back. One
connection can so be answered hundreds of times in a row while every other connection,
the accept loop and every timer wait: under 50 polling connections one greenlet
answered up to 496 requests in a row, and a 304's p99 was several times its p90
(bench/README.md, "Where the 304 tail came from"). ``TurnTakingGeventWorker`` hands the
loop back after each answer on a connection that stays open, so a connection whose
next request is already there waits its turn with the others that are ready.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker

PATH = f"{__name__}.TurnTakingGeventWorker"
"""What gunicorn's ``worker_class`` setting names for ``FLAGSVC_WORKER_CLASS=gevent``."""

TURN_SECONDS = 1e-6
"""Any positive wait: gevent resumes the greenlet only after its next poll for I/O, with
the other connections ready then (``sleep(0)`` may resume it before that poll)."""


class TurnTakingGeventWorker(GeventWorker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's gevent worker; yields to the event loop between keep-alive requests."""

    def patch(self) -> None:
        """gunicorn's ``patch`` (gevent's ``monkey.patch_all``, then the listening
        sockets), with the installed packages' entry points read once for all of it."""
        with entry_points_read_once():
            super().patch()

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> None:
        """Answer ``req``; if the connection stays open, let the others have a turn first.

        gunicorn raises ``StopIteration`` from here when the connection is to close, so
        only a connection about to read its next request waits.
        """
        super().handle_request(listener_name, req, sock, addr)
        try:
            gevent.sleep(TURN_SECONDS)
        except gevent.GreenletExit:
            raise StopIteration from None  # the worker is stopping: close this connection


@contextlib.contextmanager
def entry_points_read_once() -> Iterator[None]:
    """``importlib.metadata.entry_points`` answers from one reading while the block runs.

    gevent tells plugins (entry points) about each module ``patch_all`` patches, and
    looks them up anew each time: some 25 lookups in one call, each reading every
    installed package's metadata, most of what patching costs a worker's boot
    (bench/README.md, "The suite's time", third pass). Nothing is installed while a
    worker boots, so one reading gives every lookup the answer it would have had.
    """
    original = metadata.entry_points
    every = original()

    def selected(**selection: Any) -> Any:
        return every.select(**selection) if selection else every

    metadata.entry_points = selected
    try:
        yield
    finally:
        metadata.entry_points = original
