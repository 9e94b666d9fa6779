"""The change stream against a real service: a stream that hangs, and keep-alives the
service announces.

A proxy that buffers event streams (nginx with ``proxy_buffering on``, a corporate proxy)
accepts the stream and then delivers nothing: :class:`BufferingProxy` forwards every
other request to the real service and holds streams silent, as such a proxy does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import httpx
import pytest
from flagsvc_sdk import Client
from flagsvc_sdk import _streaming

from tests.live_helpers import wait_for

from .conftest import LIVE_FLAG as FLAG
from .conftest import LIVE_USER as USER
from .conftest import Live

LIVE_ENV = {"FLAGSVC_STREAM_KEEPALIVE_SECONDS": "1"}


class BufferingProxy(ThreadingHTTPServer):
    """Forwards to ``upstream``; ``/sdk/v1/stream`` is answered 200 and then held silent."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.release = threading.Event()
        self.streams = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: BufferingProxy
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/sdk/v1/stream"):
            self.server.streams += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            self.server.release.wait(120)  # the buffered events never come out
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        answer = httpx.get(self.server.upstream + self.path, headers=headers, timeout=10)
        self.send_response(answer.status_code)
        for name in ("Content-Type", "ETag"):
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def do_POST(self) -> None:
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy(running: Live) -> Iterator[BufferingProxy]:
    server = BufferingProxy(running.service.url)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_live__stream_accepted_but_silent__polling_goes_on(
    running: Live, proxy: BufferingProxy
) -> None:
    # Given a client whose stream is held silent by a buffering proxy
    with Client(proxy.url, running.sdk_key, poll_interval=0.5, send_metrics=False) as client:
        assert client.wait_until_ready(5) and client.is_enabled(FLAG, USER) is True
        wait_for(lambda: proxy.streams >= 1)
        # When the flag changes
        started = time.monotonic()
        version = running.set_killed(True)
        # Then polling delivers it at the poll interval, not after the stream's silence
        wait_for(lambda: client.version == version, timeout=5)
        assert time.monotonic() - started < 3.0
        assert client.is_enabled(FLAG, USER) is False


def test_live__keepalive_announced_in_hello__silence_timeout_follows_it(
    running: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an SDK whose own default would call a stream dead after 0.5 s of silence,
    # and a service that sends a keep-alive every second (and says so in hello)
    monkeypatch.setattr(_streaming, "KEEPALIVE_SECONDS", 0.5 / 3)
    with running.client(poll_interval=60) as client:
        assert client.wait_until_ready(5)
        wait_for(lambda: client.stats.stream_connects >= 1)
        # When the stream has been open for several keep-alive intervals
        time.sleep(4.0)
        # Then it was never declared dead: the announced interval counts, not the default
        # (the first connection, opened with the default, is renewed once at hello)
        assert client.stats.stream_failures == 0
        assert client.stats.stream_connects <= 2
        # And a change still arrives by the stream at once
        version = running.set_killed(True)
        wait_for(lambda: client.version == version, timeout=2)
