"""Change events written by the fan-out straight to the streams' sockets (``delivery.direct``).

Real gunicorn, both worker classes flagsvc supports, raw HTTP over sockets so the bytes
are checked exactly: an HTTP/1.1 stream must stay a well-formed chunked body (every
chunk whole, never two writers' bytes interleaved) with each change announced once, in
order, while the stream's own keep-alives (every 0.1 s here) race the fan-out; an
HTTP/1.0 stream gets the bare events. The fan-out must have written them (its counter
in ``/metrics``), or the test would pass on the streams' own writes alone.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests import live_helpers
from tests.live import LiveService
from tests.live import start_service
from tests.live_helpers import admin_client

FLAG = "direct-flag"
CHANGES = 6
WORKERS = {
    "gevent": {},
    "gthread": {"FLAGSVC_WORKER_CLASS": "gthread", "FLAGSVC_THREADS": "64"},
}
EVENT = re.compile(rb"event: (\w+)\ndata: (\{[^\n]*\})\n\n")
DIRECT = re.compile(r'^flagsvc_stream_events_total\{writer="direct"\} ([0-9.e+]+)$', re.M)


@pytest.fixture(scope="module", params=sorted(WORKERS))
def service(request, tmp_path_factory) -> Iterator[LiveService]:
    path = tmp_path_factory.mktemp("direct") / "direct.db"
    env = {"FLAGSVC_STREAM_KEEPALIVE_SECONDS": "0.1", **WORKERS[request.param]}
    with start_service(f"sqlite:///{path}", env=env) as live:
        with admin_client(live) as api:
            live_helpers.create_flag(api, FLAG, stage="off")
        yield live


def _open(service: LiveService, protocol: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    key = service.sdk_key("production")
    request = f"GET /sdk/v1/stream {protocol}\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\r\n"
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    head, _, rest = head.partition(b"\r\n\r\n")
    assert head.startswith(f"{protocol} 200".encode()), head
    return sock, rest


def _toggle(service: LiveService, environment: str, kill: bool) -> None:
    path = f"/api/v1/flags/{FLAG}/environments/{environment}/{'kill' if kill else 'resume'}"
    with admin_client(service) as api:
        assert api.post(path).status_code == 200


def _direct_writes(service: LiveService) -> float:
    match = DIRECT.search(httpx.get(f"{service.url}/metrics").text)
    return float(match.group(1)) if match else 0.0


def _dechunk(raw: bytes) -> tuple[bytes, bytes]:
    """The body of whole chunks in ``raw`` and what is left; fails on a malformed chunk."""
    body = b""
    while raw:
        size_line, sep, after = raw.partition(b"\r\n")
        if not sep:
            break
        assert re.fullmatch(rb"[0-9A-F]+", size_line), f"not a chunk size: {raw[:80]!r}"
        size = int(size_line, 16)
        if len(after) < size + 2:
            break
        assert after[size : size + 2] == b"\r\n", f"chunk not ended by CRLF: {raw[:80]!r}"
        body, raw = body + after[:size], after[size + 2 :]
    return body, raw


def _events(body: bytes) -> list[tuple[str, dict[str, object]]]:
    return [(m[1].decode(), json.loads(m[2])) for m in EVENT.finditer(body)]


def _changes_seen(sock: socket.socket, raw: bytes, chunked: bool, want: int) -> list[int]:
    """Read until ``want`` change events arrived; their versions (hello checked first)."""
    deadline = time.monotonic() + 20
    body = b""
    while time.monotonic() < deadline:
        if chunked:
            whole, raw = _dechunk(raw)
            body += whole
        else:
            body, raw = body + raw, b""
        events = _events(body)
        assert not events or events[0][0] == "hello"
        changes = [int(data["version"]) for name, data in events if name == "change"]  # type: ignore[call-overload]
        if len(changes) >= want:
            return changes
        raw += sock.recv(65536)
    raise AssertionError(f"only {_events(body)} before the deadline")


@pytest.mark.parametrize("protocol", ["HTTP/1.1", "HTTP/1.0"])
def test_direct__changes_race_keepalives__each_once_in_order_framing_intact(service, protocol):
    before = _direct_writes(service)
    sock, raw = _open(service, protocol)
    with sock:
        for n in range(CHANGES):
            _toggle(service, "production", kill=n % 2 == 0)
            _toggle(service, "staging", kill=n % 2 == 0)  # no event for production
            time.sleep(0.05)
        changes = _changes_seen(sock, raw, protocol == "HTTP/1.1", CHANGES)
    assert changes == sorted(set(changes)) and len(changes) == CHANGES
    assert _direct_writes(service) > before  # the fan-out wrote them, not only the streams


def test_direct__many_streams__every_stream_gets_the_change_once(service):
    streams = [_open(service, "HTTP/1.1") for _ in range(20)]
    try:
        _toggle(service, "production", kill=True)
        _toggle(service, "production", kill=False)
        for sock, raw in streams:
            changes = _changes_seen(sock, raw, True, 2)
            assert len(changes) == len(set(changes)) == 2
    finally:
        for sock, _raw in streams:
            sock.close()
