"""A fake flagsvc SDK API behind ``httpx.MockTransport``, and snapshot builders.

``FakeService`` answers the endpoints the SDK calls the way the real service does
(ETag / 304 on the snapshot, SSE on the stream, 202 on metrics) and can be told to fail
in the ways the SDK must survive. No sockets: every test here runs offline and fast.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from flagsvc_sdk import Client

from tests.live import LiveService
from tests.live import start_service
from tests.live_helpers import admin_client
from tests.live_helpers import create_flag
from tests.live_helpers import state_path
from tests.live_helpers import wait_for as wait_for  # re-exported for the SDK tests
from tests.wire_docs import Doc
from tests.wire_docs import cohort_doc as cohort_doc  # re-exported for the SDK tests
from tests.wire_docs import flag_doc as flag_doc
from tests.wire_docs import snapshot_doc as wire_snapshot_doc


def snapshot_doc(flags: Sequence[Doc] = (), cohorts: Sequence[Doc] = (), version: int = 1) -> Doc:
    """A spec-2 snapshot document (version 1 unless said)."""
    return wire_snapshot_doc(flags, cohorts, version)


def eu_rollout_doc(version: int = 1, **fields: Any) -> Doc:
    """``new-checkout``: cohort ``eu`` (country in NL, DE) plus a 50 % rollout."""
    eu = cohort_doc("eu", rules=[{"attribute": "country", "op": "in", "values": ["NL", "DE"]}])
    flag = flag_doc("new-checkout", **{"cohorts": ["eu"], "rollout_percent": 50, **fields})
    return snapshot_doc([flag], [eu], version=version)


def sse(event: str, data: Doc) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeService:
    """The SDK API of one environment, in memory.

    Attributes tests change: ``doc`` (use :meth:`publish`), ``down`` (every request fails
    to connect), ``snapshot_body`` (bytes served instead of ``doc``: corrupt snapshots),
    ``stream_status`` (e.g. 404 before the stream exists) with ``stream_headers``,
    ``post_status``.
    """

    def __init__(self, doc: Doc | None = None) -> None:
        self.doc: Doc = doc if doc is not None else eu_rollout_doc()
        self.down = False
        self.snapshot_body: bytes | None = None
        self.patch: Doc | None = None
        """Served instead of ``doc`` to a request with ``?since=`` (then set back to None)."""
        self.stream_status = 200
        self.stream_headers: dict[str, str] = {}
        self.post_status = 202
        self.requests: list[httpx.Request] = []
        self.posts: list[tuple[str, Doc]] = []
        self.streams: list[queue.Queue[bytes | None]] = []
        self.closed = threading.Event()
        self._lock = threading.Lock()

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def etag(self) -> str:
        return f'"{self.doc["environment"]}.{self.doc["version"]}"'

    def paths(self) -> list[str]:
        with self._lock:
            return [request.url.path for request in self.requests]

    def publish(self, doc: Doc) -> None:
        """Replace the snapshot and announce it on every open stream."""
        self.doc = doc
        self.push(sse("change", {"environment": "production", "version": doc["version"]}))

    def push(self, chunk: bytes | None) -> None:
        """Send raw bytes on every open stream (``None`` ends them)."""
        for stream in list(self.streams):
            stream.put(chunk)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        routes: dict[str, Callable[[httpx.Request], httpx.Response]] = {
            "/sdk/v1/snapshot": self._snapshot,
            "/sdk/v1/stream": self._stream,
        }
        route = routes.get(request.url.path, self._post)
        return route(request)

    def _snapshot(self, request: httpx.Request) -> httpx.Response:
        if self.snapshot_body is not None:
            return httpx.Response(200, content=self.snapshot_body)
        etag = self.etag
        if request.headers.get("If-None-Match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        headers = {"ETag": etag, "Flagsvc-Content-Hash": f"hash-{self.doc['version']}"}
        if self.patch is not None and "since" in request.url.params:
            patch, self.patch = self.patch, None
            return httpx.Response(200, json=patch, headers=headers)
        return httpx.Response(200, json=self.doc, headers=headers)

    def _post(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.posts.append((request.url.path, json.loads(request.content)))
        return httpx.Response(self.post_status, json={})

    def _stream(self, request: httpx.Request) -> httpx.Response:
        if self.stream_status != 200:
            body = {"message": "no stream"}
            return httpx.Response(self.stream_status, json=body, headers=self.stream_headers)
        events: queue.Queue[bytes | None] = queue.Queue()
        self.streams.append(events)
        hello = sse("hello", {"environment": "production", "version": self.doc["version"]})
        events.put(b"retry: 1000\n\n" + hello)
        headers = {"Content-Type": "text/event-stream"}
        return httpx.Response(200, headers=headers, content=self._events(events))

    def _events(self, events: queue.Queue[bytes | None]) -> Iterator[bytes]:
        """Yield queued chunks; a ``ping`` event every 20 ms hands control back to the
        reader (the real service's keep-alive comments do not surface as events)."""
        try:
            while not self.closed.is_set():
                try:
                    chunk = events.get(timeout=0.02)
                except queue.Empty:
                    chunk = b"event: ping\ndata: {}\n\n"
                if chunk is None:
                    return
                if self.down:
                    raise httpx.ReadError("connection reset")
                yield chunk
        finally:
            self.streams.remove(events)


class ExplodingMapping(Mapping[str, object]):
    """A context whose every access raises: evaluation must still not raise."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        raise RuntimeError("boom")


@pytest.fixture
def service() -> Iterator[FakeService]:
    fake = FakeService()
    yield fake
    fake.closed.set()


@pytest.fixture
def make_client(service: FakeService) -> Iterator[Callable[..., Client]]:
    """Build clients on the fake service (fast polling, no metrics thread unless asked)."""
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        settings: dict[str, Any] = {"poll_interval": 0.05, "send_metrics": False}
        settings.update(options)
        client = Client("http://flags.test", "sdk-key", transport=service.transport, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- a real service (tests/live.py), for the live SDK tests ------------------------------

LIVE_FLAG = "sdk-live-flag"
LIVE_STATE = state_path(LIVE_FLAG, "staging")
LIVE_USER = {"key": "user-1", "country": "NL"}


@dataclass
class Live:
    service: LiveService
    admin: httpx.Client
    sdk_key: str

    def client(self, **options: Any) -> Client:
        settings: dict[str, Any] = {"poll_interval": 0.5, "timeout": 2.0}
        settings.update(options)
        return Client(self.service.url, self.sdk_key, **settings)

    def set_killed(self, killed: bool) -> int:
        """Kill or resume the flag; return the snapshot version the change produced."""
        response = self.admin.post(f"{LIVE_STATE}/{'kill' if killed else 'resume'}")
        assert response.status_code == 200, response.text
        return self.snapshot_version()

    def snapshot_version(self) -> int:
        status, body = self.service.get("/sdk/v1/snapshot", self.sdk_key)
        assert status == 200
        return int(json.loads(body)["version"])

    def restart(self) -> None:
        self.service.start()
        self.admin.close()  # its pooled connections died with the old process
        self.admin = httpx.Client(base_url=self.service.url, headers=self.admin.headers)


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A service on a SQLite file for the test module, with the module's ``LIVE_ENV``
    settings; the flag ``LIVE_FLAG`` at 100 % in ``staging``."""
    database = tmp_path_factory.mktemp("live") / "flagsvc.db"
    service = start_service(f"sqlite:///{database}", env=getattr(request.module, "LIVE_ENV", {}))
    try:
        assert service.admin_token
        admin = admin_client(service)
        create_flag(admin, LIVE_FLAG)
        live = Live(service, admin, service.sdk_key("staging"))
        yield live
        live.admin.close()
    finally:
        service.stop()


@pytest.fixture
def running(live: Live) -> Live:
    """The service, started again if a previous test left it down; the flag resumed."""
    if live.service.process is None:
        live.restart()
    live.set_killed(False)
    return live
