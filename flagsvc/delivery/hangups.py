"""Streams whose clients went away, found within a second instead of at a failed write.

An SDK stream only writes (a keep-alive every 15 s), so a client that left was found
when a write failed: the second keep-alive after its RST, 25–30 s, all that time
holding a stream slot of its SDK key and address. ``HangupWatch`` runs one thread per
process that every second peeks at each stream's client socket and ends the streams
whose clients are gone (their slot and subscription come back at once).

**What counts as gone** (``hung_up``): a non-blocking ``recv(1, MSG_PEEK | MSG_DONTWAIT)``
on the connection's own socket that returns ``b""`` (the client's FIN: it closed, or
half-closed, and will send nothing more) or fails with a connection error (ECONNRESET,
EPIPE, ETIMEDOUT, ...: the kernel already knows the peer is gone). Everything else is
"still there": EAGAIN / EWOULDBLOCK (nothing to read, the normal state of a stream),
bytes waiting (a pipelined request: a peek consumes nothing), EINTR, any error we
did not expect, and any socket we cannot peek safely. The service never ends a stream
on a guess; the failed write stays the fallback.

**Traps a peek falls into** (an earlier per-second peek, never landed, closed a live
stream in a loaded run; its code is gone, these are the ways it can happen, each
covered by ``tests/delivery/test_hangups.py``):

- *Reading "readable" as "closed"*: a socket is readable when bytes wait too.
- *EAGAIN as an error*: ``BlockingIOError`` is an ``OSError``; a blanket
  ``except OSError`` ends every quiet stream, more often the busier the machine.
- *The gevent wrapper*: gunicorn's gevent worker hands the app a gevent socket in
  blocking mode, whose ``recv`` waits for readability on EAGAIN (the sweep would
  hang on the first quiet stream) and raises if two greenlets wait on one socket.
  So the peek calls ``_socket.socket.recv`` on the real socket underneath.
- *A socket with a timeout*: CPython polls for up to the timeout before a recv,
  whatever the flags; such a socket is not peeked.
- *Changing the socket*: ``setblocking(False)`` on the shared descriptor would turn
  a gthread worker's blocking writes into EAGAIN failures, and a socket object made
  ``fromfd`` / ``socket(fileno=...)`` and then dropped closes the client's connection.
  The peek makes no socket object and changes no mode.
- *The wrong socket*: the socket comes from the request's own ``gunicorn.socket``
  (held as an object, never a bare descriptor number that gunicorn may reuse for
  the next connection once a stream ends).

Under gevent the watch thread is a greenlet (``threading`` is patched). A peek costs
about 14 µs (a sweep of 2,000 streams 28 ms, measured at load 9 on the shared 2-core
machine), no greenlet switch per stream; the sweep yields every ``SLICE`` peeks so
other greenlets never wait for a whole sweep.
"""

from __future__ import annotations

import _socket
import errno
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 1.0
SLICE = 256  # peeks between two yields (about 4 ms)
_PEEK_FLAGS = _socket.MSG_PEEK | _socket.MSG_DONTWAIT
_GONE_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EBADF,  # closed by the server itself: the stream is over anyway
    }
)


def real_socket(sock: object) -> _socket.socket | None:
    """The C-level socket under ``sock`` (itself, or a gevent wrapper's ``_sock``)."""
    if isinstance(sock, _socket.socket):
        return sock
    inner = getattr(sock, "_sock", None)  # gevent.socket.socket keeps the real one here
    return inner if isinstance(inner, _socket.socket) else None


def hung_up(sock: object) -> bool:
    """True only when the client behind ``sock`` is certainly gone (FIN or a dead connection).

    Never blocks, never consumes a byte, never changes the socket; False whenever it
    cannot tell.
    """
    real = real_socket(sock)
    if real is None:
        return False
    if real.fileno() < 0:
        return True  # closed on our side
    timeout = real.gettimeout()
    if timeout is not None and timeout > 0:
        return False  # recv would poll up to ``timeout`` first: cannot peek without waiting
    try:
        data = _socket.socket.recv(real, 1, _PEEK_FLAGS)
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: a quiet client
    except OSError as error:
        return error.errno in _GONE_ERRNOS
    return data == b""


class HangupWatch:
    """The streams of this process whose client sockets are peeked every ``every`` seconds.

    ``watch`` registers a stream and returns its ``forget`` (idempotent; the stream's
    close calls it). The thread starts with the first ``watch``: gunicorn forks (and
    gevent patches ``threading``) after the app is built.
    """

    def __init__(self, every: float = CHECK_EVERY_SECONDS) -> None:
        self.every = every
        self._streams: dict[int, tuple[object, Callable[[], None]]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started = False

    @property
    def watched(self) -> int:
        """Streams being watched (tests)."""
        return len(self._streams)

    def watch(self, sock: object, end: Callable[[], None]) -> _Forget:
        """Peek at ``sock`` every sweep; call ``end`` (once) when its client is gone.

        A ``sock`` that cannot be peeked (none: the Flask test client) is not watched.
        """
        ticket = next(self._ids)
        if real_socket(sock) is None:
            return _Forget(self, ticket)
        with self._lock:
            self._streams[ticket] = (sock, end)
        self._start_once()
        return _Forget(self, ticket)

    def forget(self, ticket: int) -> None:
        with self._lock:
            self._streams.pop(ticket, None)

    def sweep(self) -> int:
        """One pass: end (and stop watching) every stream whose client is gone; how many."""
        with self._lock:
            watched = list(self._streams.items())
        gone = []
        for index, (ticket, (sock, end)) in enumerate(watched, 1):
            if hung_up(sock):
                gone.append((ticket, end))
            if index % SLICE == 0:
                time.sleep(0)  # gevent: let other greenlets run between slices
        for ticket, end in gone:
            self.forget(ticket)
            try:
                end()
            except Exception:  # one stream's trouble must not stop the watch
                log.exception("ending a stream whose client left failed")
        return len(gone)

    def close(self) -> None:
        """Stop the thread (tests, shutdown)."""
        self._stopping.set()

    def _start_once(self) -> None:
        if self._started:
            return
        with self._lock:
            if self._started or self._stopping.is_set():
                return
            self._started = True
        threading.Thread(target=self._run, name="flagsvc-hangups", daemon=True).start()

    def _run(self) -> None:
        while not self._stopping.wait(self.every):
            try:
                self.sweep()
            except Exception:  # the watch must live on
                log.exception("stream hang-up sweep failed")


class _Forget:
    """Stop watching one stream (idempotent: a stream has several close paths)."""

    __slots__ = ("_ticket", "_watch")

    def __init__(self, watch: HangupWatch, ticket: int) -> None:
        self._watch = watch
        self._ticket = ticket

    def __call__(self) -> None:
        self._watch.forget(self._ticket)
