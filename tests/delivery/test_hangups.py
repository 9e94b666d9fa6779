"""Telling a client that went away from one that is only quiet, on real TCP sockets.

A stream's slot must come back within seconds of its client leaving, and a live
client must never lose its stream to a guess. The first attempt (a per-second peek,
never landed) closed live streams under load; each trap such a peek can fall into
has a case here: nothing to read is not a close, pending bytes are not a close, a
gevent socket wrapper must not block or raise, a socket with a timeout must not be
polled, and the peek must leave the socket as it found it (blocking mode, open fd).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from flagsvc.delivery.hangups import HangupWatch
from flagsvc.delivery.hangups import hung_up


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server side, client side) of one loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    yield server, client
    server.close()
    client.close()


def _settle() -> None:
    time.sleep(0.05)  # a FIN or RST crosses loopback in microseconds; be generous


def test_hung_up__quiet_client__no(pair):
    server, _client = pair
    assert hung_up(server) is False


def test_hung_up__client_sent_bytes_not_yet_read__no_and_the_bytes_stay(pair):
    server, client = pair
    client.sendall(b"GET /next HTTP/1.1\r\n")
    _settle()
    assert hung_up(server) is False
    assert server.recv(100) == b"GET /next HTTP/1.1\r\n"  # a peek consumes nothing


def test_hung_up__client_closed__yes(pair):
    server, client = pair
    client.close()
    _settle()
    assert hung_up(server) is True


def test_hung_up__client_half_closed__yes(pair):
    server, client = pair
    client.shutdown(socket.SHUT_WR)  # its FIN: it will send nothing more
    _settle()
    assert hung_up(server) is True


def test_hung_up__client_reset__yes(pair):
    server, client = pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # linger 0: RST, as a killed process or a NAT timeout looks
    _settle()
    assert hung_up(server) is True


def test_hung_up__after_a_reset_that_a_write_already_reported__still_yes(pair):
    server, client = pair
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    _settle()
    with pytest.raises(OSError):
        server.sendall(b"x" * 10)
        _settle()
        server.sendall(b"x" * 10)
    assert hung_up(server) is True


def test_hung_up__server_closed_its_own_socket__yes_without_raising(pair):
    server, _client = pair
    server.close()
    assert hung_up(server) is True


@pytest.mark.parametrize("blocking", [True, False])
def test_hung_up__leaves_blocking_mode_and_fd_as_found(pair, blocking):
    server, client = pair
    server.setblocking(blocking)
    fd = server.fileno()
    for _ in range(100):
        assert hung_up(server) is False
    assert server.getblocking() is blocking and server.fileno() == fd
    client.sendall(b"ping")
    server.setblocking(True)
    assert server.recv(4) == b"ping"  # still this connection, still usable


def test_hung_up__socket_with_a_timeout__unknown_answers_no_at_once(pair):
    server, _client = pair
    server.settimeout(5.0)  # recv would poll up to 5 s before trying: never asked
    started = time.monotonic()
    assert hung_up(server) is False
    assert time.monotonic() - started < 0.5
    assert server.gettimeout() == 5.0


def test_hung_up__gevent_socket_as_gunicorns_gevent_worker_hands_it__answers_at_once():
    gevent_socket = pytest.importorskip("gevent.socket")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        raw, _ = listener.accept()
        # gunicorn's gevent worker: client.setblocking(1), i.e. the wrapper waits on EAGAIN
        wrapped = gevent_socket.socket(fileno=raw.detach())
        wrapped.setblocking(True)
        try:
            started = time.monotonic()
            assert hung_up(wrapped) is False  # through the wrapper this would block
            assert time.monotonic() - started < 0.5
            client.close()
            _settle()
            assert hung_up(wrapped) is True
        finally:
            wrapped.close()
            client.close()


def test_hung_up__not_a_socket__no():
    assert hung_up(None) is False
    assert hung_up(object()) is False


class _Stream:
    def __init__(self) -> None:
        self.ended = threading.Event()

    def end(self) -> None:
        self.ended.set()


def test_sweep__ends_only_the_streams_whose_clients_left(pair):
    server, client = pair
    with socket.create_server(("127.0.0.1", 0)) as listener:
        quiet_client = socket.create_connection(listener.getsockname())
        quiet_server, _ = listener.accept()
    watch = HangupWatch(every=60)
    gone, quiet = _Stream(), _Stream()
    watch.watch(server, gone.end)
    watch.watch(quiet_server, quiet.end)
    client.close()
    _settle()
    assert watch.sweep() == 1
    assert gone.ended.is_set() and not quiet.ended.is_set()
    assert watch.watched == 1  # an ended stream is not peeked again
    quiet_server.close()
    quiet_client.close()


def test_sweep__forgotten_stream__never_ended(pair):
    server, client = pair
    watch = HangupWatch(every=60)
    stream = _Stream()
    forget = watch.watch(server, stream.end)
    forget()
    forget()  # the generator's finally and the response's close both call it
    client.close()
    _settle()
    assert watch.sweep() == 0 and not stream.ended.is_set()


def test_watch__background_sweeps__ends_a_left_stream_within_the_interval(pair):
    server, client = pair
    watch = HangupWatch(every=0.05)
    stream = _Stream()
    watch.watch(server, stream.end)
    try:
        client.close()
        assert stream.ended.wait(2.0)
    finally:
        watch.close()
