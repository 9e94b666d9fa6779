"""The updater: stream events, ETag fetches, polling fallback, silence, backoff on reconnect."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import httpx
import pytest
from flagsvc_sdk import Client
from flagsvc_sdk import _streaming

from .conftest import FakeService
from .conftest import eu_rollout_doc
from .conftest import sse
from .conftest import wait_for

MakeClient = Callable[..., Client]
NL = {"key": "user-1", "country": "NL"}


def streaming(make_client: MakeClient, poll_interval: float) -> Client:
    """A client that holds its first snapshot and is connected to the stream."""
    client = make_client(poll_interval=poll_interval)
    client.wait_until_ready(5)
    wait_for(lambda: client.stats.stream_connects == 1)
    return client


def test_stream__change_event__new_snapshot_within_moments(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given a client on the stream, with polling too slow to matter
    client = streaming(make_client, poll_interval=60)
    # When
    started = time.monotonic()
    service.publish(eu_rollout_doc(version=2, killed=True))
    wait_for(lambda: client.version == 2)
    # Then
    assert time.monotonic() - started < 1.0
    assert client.is_enabled("new-checkout", NL) is False
    fetch = [r for r in service.requests if r.url.path == "/sdk/v1/snapshot"][-1]
    assert fetch.headers["If-None-Match"] == '"production.1"'


def test_stream__hello_with_held_version__no_second_fetch(
    service: FakeService, make_client: MakeClient
) -> None:
    streaming(make_client, poll_interval=60)
    time.sleep(0.1)
    assert service.paths().count("/sdk/v1/snapshot") == 1


def test_stream__change_for_same_content__304_keeps_snapshot(
    service: FakeService, make_client: MakeClient
) -> None:
    client = streaming(make_client, poll_interval=60)
    loaded = client.stats.snapshots_loaded
    service.push(sse("change", {"environment": "production", "version": 99}))
    wait_for(lambda: client.stats.fetches == 2)
    assert client.stats.snapshots_loaded == loaded and client.version == 1


@pytest.mark.parametrize("data", ["not json", "[]", '{"version": "7"}', "{}"])
def test_stream__change_without_readable_version__fetches_to_be_safe(
    service: FakeService, make_client: MakeClient, data: str
) -> None:
    client = streaming(make_client, poll_interval=60)
    service.doc = eu_rollout_doc(version=2)
    service.push(f"event: change\ndata: {data}\n\n".encode())
    wait_for(lambda: client.version == 2)


def test_stream__not_served_yet__polling_alone_keeps_up(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given a service without the stream endpoint
    service.stream_status = 404
    client = make_client(poll_interval=0.05)
    client.wait_until_ready(5)
    # When
    service.doc = eu_rollout_doc(version=2, killed=True)
    # Then
    wait_for(lambda: client.version == 2)
    assert client.stats.stream_failures >= 1 and client.stats.stream_connects == 0


def test_stream__service_dies_mid_stream__polls_then_reconnects_and_catches_up(
    service: FakeService, make_client: MakeClient
) -> None:
    client = streaming(make_client, poll_interval=0.05)
    # When the service goes away (the stream breaks) and comes back with a change
    service.down = True
    wait_for(lambda: client.stats.stream_failures >= 1)
    assert client.is_enabled("new-checkout", NL) is True  # still answering
    service.doc = eu_rollout_doc(version=3, killed=True)
    service.down = False
    # Then
    wait_for(lambda: client.version == 3)
    wait_for(lambda: client.stats.stream_connects >= 2)


def test_stream__disabled__only_polls(service: FakeService, make_client: MakeClient) -> None:
    client = make_client(stream=False, poll_interval=0.02)
    client.wait_until_ready(5)
    wait_for(lambda: client.stats.fetches >= 3)
    assert "/sdk/v1/stream" not in service.paths()


def test_stream__retry_hint__sets_backoff_base(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client()
    wait_for(lambda: client.stats.stream_connects == 1)
    assert client._background.updater.backoff.base == 1.0
    assert client._background.updater.backoff.attempt == 0


def test_updater__service_flapping__always_answers_and_ends_on_newest(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(poll_interval=0.02)
    client.wait_until_ready(5)
    for version in range(2, 7):
        service.down = True
        for _ in range(20):
            assert client.is_enabled("new-checkout", NL) in (True, False)
            time.sleep(0.002)
        service.doc = eu_rollout_doc(version=version)
        service.down = False
        time.sleep(0.03)
    wait_for(lambda: client.version == 6)


class _SilentStream(BaseHTTPRequestHandler):
    """Says hello, then nothing at all: not even keep-alives."""

    def do_GET(self) -> None:
        doc = json.dumps(eu_rollout_doc()).encode()
        if self.path.endswith("/snapshot"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(doc)))
            self.end_headers()
            self.wfile.write(doc)
            return
        self.server.streams += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(sse("hello", {"environment": "production", "version": 1}))
        self.wfile.flush()
        self.server.release.wait(5)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def silent_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SilentStream)
    server.streams = 0  # type: ignore[attr-defined]
    server.release = threading.Event()  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.release.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_stream__silent_past_timeout__declared_dead_and_reconnected(
    silent_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given keep-alives expected every 0.1 s, so 0.3 s of silence means dead
    monkeypatch.setattr(_streaming, "KEEPALIVE_SECONDS", 0.1)
    url = f"http://127.0.0.1:{silent_server.server_address[1]}"
    with Client(url, "k", send_metrics=False, poll_interval=60) as client:
        # Then the stream is dropped and opened again
        wait_for(lambda: silent_server.streams >= 2, timeout=5)  # type: ignore[attr-defined]
        assert client.stats.stream_failures >= 1
        assert client.is_enabled("new-checkout", NL) is True


def test_close__while_streaming_on_a_real_socket__returns_quickly(
    silent_server: ThreadingHTTPServer,
) -> None:
    url = f"http://127.0.0.1:{silent_server.server_address[1]}"
    client = Client(url, "k", send_metrics=False)
    wait_for(lambda: client.stats.stream_connects == 1)
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 0.5
    assert not any(thread.is_alive() for thread in client._background.updater.threads)


def test_updater__transport_raises_anything__thread_survives(service: FakeService) -> None:
    class Buggy:
        calls = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            Buggy.calls += 1
            if Buggy.calls <= 3:
                raise RuntimeError("transport bug")
            return service.handle(request)

    with Client(
        "http://flags.test", "k", transport=Buggy(), poll_interval=0.02, send_metrics=False
    ) as client:
        wait_for(lambda: client.version == 1)
        assert client.stats.fetch_failures + client.stats.stream_failures >= 1


def test_stream__refused_with_retry_after__waits_that_long_and_keeps_polling(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given an instance at its stream limit: 503 with Retry-After: 1
    service.stream_status = 503
    service.stream_headers = {"Retry-After": "1"}
    client = make_client(poll_interval=0.05)
    client.wait_until_ready(5)
    wait_for(lambda: client.stats.stream_failures == 1)
    # When a change is made meanwhile
    service.doc = eu_rollout_doc(version=2, killed=True)
    # Then polling picks it up, and the stream is not retried before a second has passed
    wait_for(lambda: client.version == 2)
    time.sleep(0.5)
    assert client.stats.stream_failures == 1
    wait_for(lambda: client.stats.stream_failures >= 2, timeout=5)
