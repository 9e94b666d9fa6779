"""A change event written to every open stream of an environment in one pass.

Each SDK stream is a greenlet (or a thread) that waits for a change, wakes, formats
nothing (the bytes are built once per version), and hands its event to gunicorn, which
frames a chunk and writes it. With 1,000 streams that was about 55 µs of the worker's
time per stream for each change (1,000 wake-ups, generator and WSGI layers, a timer
per wait): the last stream got the event 50-150 ms after the first. The socket write
itself is about 10 µs.

So once the snapshot cache has the new version (``SnapshotCache.prepare``, on the
broker's announcer thread, before any stream wakes), ``DirectSinks.deliver`` writes the
event's bytes, framed once, straight to each stream's client socket: one non-blocking
``send`` per stream, in one loop. Whatever it cannot do at once it leaves to the stream
itself, which wakes a moment later and sends the event the ordinary way:

- the stream is writing (a keep-alive, the rest of an earlier event): its lock is held;
- the socket's buffer is full (a slow reader): ``EAGAIN``, nothing written;
- only part fitted: the rest is kept, and the stream writes it before anything else;
- any socket error: the stream's own write finds out, as before.

A stream has a sink only when its bytes can be framed here exactly as gunicorn would:
HTTP/1.1 (gunicorn's chunked encoding, the response has no length) or HTTP/1.0
(unframed), a plain TCP socket (not TLS), after gunicorn wrote the headers and the
hello (the sink is opened after that write). Elsewhere (the Flask test client, TLS,
HTTP/2) the stream delivers as before. Every write to a stream with a sink, the
stream's own included, happens under the sink's lock, so chunks never interleave.
The socket is reached as ``hangups`` reaches it: the C-level socket under gunicorn's
object, ``MSG_DONTWAIT``, no mode changed, the object held (never a bare descriptor).
"""

from __future__ import annotations

import _socket
import contextlib
import functools
import itertools
import json
import threading
import time
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

from flagsvc.delivery.hangups import real_socket
from flagsvc.observability import metrics

_SEND_FLAGS = _socket.MSG_DONTWAIT
_PROTOCOLS = {"HTTP/1.1": True, "HTTP/1.0": False}  # SERVER_PROTOCOL -> chunked
_WRITTEN_HERE = metrics.STREAM_EVENTS.labels("direct")
WRITTEN_BY_STREAM = metrics.STREAM_EVENTS.labels("stream")


@functools.lru_cache(maxsize=1024)
def sse_event(event: str, environment: str, version: int) -> bytes:
    """One event's bytes, formatted once for all the streams that send it."""
    data = json.dumps({"environment": environment, "version": version})
    return f"event: {event}\ndata: {data}\n\n".encode()


@functools.lru_cache(maxsize=1024)
def _framed(environment: str, version: int, chunked: bool) -> bytes:
    body = sse_event("change", environment, version)
    return b"%X\r\n%s\r\n" % (len(body), body) if chunked else body


class Sink:
    """One stream's client socket, written by ``DirectSinks.deliver`` when it is free.

    ``last`` is the version this stream last announced (hello included), whoever wrote
    it; ``delivered_at`` is when ``deliver`` last wrote to it (Unix seconds).
    """

    def __init__(
        self,
        sinks: DirectSinks,
        environment: str,
        sock: object,
        real: _socket.socket,
        chunked: bool,
        last: int,
    ) -> None:
        self._sinks = sinks
        self.environment = environment
        self._ticket: int | None = None
        self.sock = sock  # gunicorn's object: what the stream's own writes go through
        self._real = real
        self.chunked = chunked
        self.last = last
        self.delivered_at: float | None = None
        self.lock = threading.Lock()
        self._rest = b""  # an event only partly written: the stream writes the rest first
        self._closed = False

    def try_send(self, environment: str, version: int, at: float) -> bool:
        """Write ``version``'s event now if nothing stands in the way; never waits."""
        if not self.lock.acquire(blocking=False):
            return False  # the stream is writing: it will send the event itself
        try:
            if self._closed or self._rest or version == self.last:
                return False
            data = _framed(environment, version, self.chunked)
            try:
                sent = _socket.socket.send(self._real, data, _SEND_FLAGS)
            except OSError:  # EAGAIN, or the client is gone: the stream's own write tells
                return False
            self.last, self.delivered_at = version, at
            self._rest = data[sent:]
            return True
        finally:
            self.lock.release()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the socket for one write of the stream's own (and finish a partial event
        first), so ``deliver`` never writes between the parts of a chunk."""
        with self.lock:
            if self._rest:
                rest, self._rest = self._rest, b""
                self.sock.sendall(rest)  # type: ignore[attr-defined]  # gunicorn's socket
            yield

    def start(self) -> None:
        """Take this stream's changes from now on (after gunicorn wrote the hello)."""
        if self._ticket is None and not self._closed:
            self._ticket = self._sinks.add(self.environment, self)

    def close(self) -> None:
        """Nothing is written here any more (before gunicorn ends the response); idempotent.

        An event written only in part is finished first, so the response still ends on
        a whole chunk (a client that left makes that write fail: nothing to finish).
        """
        if self._ticket is not None:
            self._sinks.remove(self.environment, self._ticket)
        with self.lock:
            self._closed = True
            rest, self._rest = self._rest, b""
            if rest:
                with contextlib.suppress(OSError):
                    self.sock.sendall(rest)  # type: ignore[attr-defined]  # gunicorn's socket


class DirectSinks:
    """This process's sinks by environment; ``deliver`` writes one version to them all."""

    def __init__(self) -> None:
        self._by_environment: dict[str, dict[int, Sink]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self.written = 0
        """Events written here rather than by the streams (tests and benchmarks)."""

    def sink_for(self, environ: Mapping[str, Any], environment: str, last: int) -> Sink | None:
        """A sink for the stream of request ``environ`` on ``environment`` (hello
        ``last``; ``start`` it once the hello is written), or None when its bytes cannot
        be framed here exactly as the server would."""
        chunked = _PROTOCOLS.get(environ.get("SERVER_PROTOCOL", ""))
        sock = environ.get("gunicorn.socket")
        if chunked is None or sock is None or hasattr(sock, "cipher"):  # TLS: not ours
            return None
        real = real_socket(sock)
        if real is None or real.gettimeout() not in (None, 0.0):
            return None  # a timeout makes CPython poll before sending, flags or not
        return Sink(self, environment, sock, real, chunked, last)

    def add(self, environment: str, sink: Sink) -> int:
        """Deliver ``environment``'s changes to ``sink`` (``Sink.start``); its ticket."""
        ticket = next(self._ids)
        with self._lock:
            self._by_environment.setdefault(environment, {})[ticket] = sink
        return ticket

    def remove(self, environment: str, ticket: int) -> None:
        with self._lock:
            sinks = self._by_environment.get(environment)
            if sinks is not None:
                sinks.pop(ticket, None)
                if not sinks:
                    del self._by_environment[environment]

    def environments(self) -> list[str]:
        """Environments with at least one sink."""
        with self._lock:
            return list(self._by_environment)

    def deliver(self, environment: str, version: int) -> int:
        """Write ``version``'s change event to every sink of ``environment`` that is free
        and has not announced it; how many were written."""
        with self._lock:
            sinks = list(self._by_environment.get(environment, {}).values())
        at = time.time()
        written = sum(1 for sink in sinks if sink.try_send(environment, version, at))
        if written:
            self.written += written
            _WRITTEN_HERE.inc(written)
        return written
