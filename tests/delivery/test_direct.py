"""The change fan-out's direct writes (``delivery.direct``), on real sockets.

What a stream's client reads must be exactly what gunicorn would have written: whole
chunks (HTTP/1.1) or the bare event (HTTP/1.0), each change once, never two writers'
bytes interleaved; whatever the fan-out cannot write at once it leaves to the stream.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from flagsvc.delivery.direct import DirectSinks
from flagsvc.delivery.direct import Sink
from flagsvc.delivery.direct import sse_event

ENV = "production"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    client.settimeout(5)
    yield server, client
    server.close()
    client.close()


def _environ(sock: object, protocol: str = "HTTP/1.1") -> dict[str, object]:
    return {"SERVER_PROTOCOL": protocol, "gunicorn.socket": sock}


def _chunk(data: bytes) -> bytes:
    return b"%X\r\n%s\r\n" % (len(data), data)


def _read(client: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += client.recv(size - len(data))
    return data


def _started(sinks: DirectSinks, sock: socket.socket, protocol: str = "HTTP/1.1") -> Sink:
    sink = sinks.sink_for(_environ(sock, protocol), ENV, last=1)
    assert sink is not None
    sink.start()
    return sink


def test_deliver__http11__one_whole_chunk_per_stream_once(pair):
    server, client = pair
    sinks = DirectSinks()
    _started(sinks, server)
    assert sinks.deliver(ENV, 2) == 1
    expected = _chunk(sse_event("change", ENV, 2))
    assert _read(client, len(expected)) == expected
    assert sinks.deliver(ENV, 2) == 0  # announced already: not again
    assert sinks.deliver("staging", 3) == 0  # another environment's streams only


def test_deliver__http10__the_bare_event(pair):
    server, client = pair
    sinks = DirectSinks()
    _started(sinks, server, "HTTP/1.0")
    sinks.deliver(ENV, 2)
    expected = sse_event("change", ENV, 2)
    assert _read(client, len(expected)) == expected


def test_deliver__the_hello_version__nothing_written(pair):
    server, _client = pair
    sinks = DirectSinks()
    _started(sinks, server)  # hello announced version 1
    assert sinks.deliver(ENV, 1) == 0


def test_deliver__before_start_or_after_close__nothing_written(pair):
    server, _client = pair
    sinks = DirectSinks()
    sink = sinks.sink_for(_environ(server), ENV, last=1)
    assert sink is not None
    assert sinks.deliver(ENV, 2) == 0  # not started: gunicorn has not written the hello
    sink.start()
    sink.close()
    assert sinks.deliver(ENV, 2) == 0 and sinks.environments() == []


def test_deliver__stream_writing__left_to_the_stream(pair):
    server, client = pair
    sinks = DirectSinks()
    sink = _started(sinks, server)
    with sink.writing():  # the stream holds its socket (a keep-alive being written)
        assert sinks.deliver(ENV, 2) == 0
    assert sink.last == 1  # so the stream sends version 2 itself when it wakes
    keepalive = _chunk(b": keep-alive\n\n")
    server.sendall(keepalive)
    assert _read(client, len(keepalive)) == keepalive


def test_deliver__buffer_full__nothing_written_and_never_waits(pair):
    server, _client = pair
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        while True:  # a reader that stopped reading
            server.send(b"x" * 65536)
    sinks = DirectSinks()
    sink = _started(sinks, server)
    assert sinks.deliver(ENV, 2) == 0
    assert sink.last == 1


def test_deliver__partial_write__the_stream_finishes_it_before_its_own(pair):
    server, client = pair
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    server.setblocking(False)
    filled = 0
    with pytest.raises(BlockingIOError):
        while True:
            filled += server.send(b"x" * 1024)
    sinks = DirectSinks()
    sink = _started(sinks, server)
    expected = _chunk(sse_event("change", ENV, 2))
    written = None
    for _ in range(200):  # free a little room at a time until the event goes in part
        client.recv(64)
        filled -= 64
        written = sinks.deliver(ENV, 2)
        if written:
            break
    assert written == 1
    server.setblocking(True)

    def stream_writes() -> None:
        with sink.writing():  # finishes the event first, then its own bytes
            server.sendall(_chunk(b": keep-alive\n\n"))

    writer = threading.Thread(target=stream_writes)
    writer.start()
    received = b""
    tail = expected + _chunk(b": keep-alive\n\n")
    while not received.endswith(tail):
        received += client.recv(65536)
    writer.join(5)
    assert received.endswith(tail)
    assert set(received[: -len(tail)]) <= {ord("x")}


@pytest.mark.parametrize(
    "environ",
    [
        {"SERVER_PROTOCOL": "HTTP/1.1"},  # no socket: the Flask test client
        {"SERVER_PROTOCOL": "HTTP/2", "gunicorn.socket": "plain"},
        {"SERVER_PROTOCOL": "HTTP/1.1", "gunicorn.socket": object()},  # not a socket
    ],
    ids=["no-socket", "http2", "not-a-socket"],
)
def test_sink_for__bytes_not_framed_here__none(environ):
    if environ.get("gunicorn.socket") == "plain":
        environ["gunicorn.socket"] = socket.socket()
    assert DirectSinks().sink_for(environ, ENV, last=1) is None


def test_sink_for__tls_or_a_timeout__none(pair):
    server, _client = pair

    class Tls(socket.socket):
        def cipher(self) -> None: ...

    tls = Tls(fileno=server.dup().detach())
    try:
        assert DirectSinks().sink_for(_environ(tls), ENV, last=1) is None
    finally:
        tls.close()
    server.settimeout(3)
    assert DirectSinks().sink_for(_environ(server), ENV, last=1) is None
