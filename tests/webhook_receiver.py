"""A real webhook receiver for tests: an ``http.server`` on a thread, on 127.0.0.1.

It records every request (headers, body) and can answer slowly, fail, or be down (not
listening yet: :func:`free_port` reserves a port it binds to later). ``max_in_flight``
counts, per event id, how many requests for it were being answered at the same time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["Flagsvc-Event-Id"]


@dataclass
class Behaviour:
    """How the receiver answers: ``delays`` and ``statuses`` are used up one per request
    (then ``delay`` / ``status``)."""

    status: int = 200
    delay: float = 0.0
    statuses: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)


class Receiver:
    """Collects what it receives; thread-safe."""

    def __init__(self, port: int = 0) -> None:
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self.max_in_flight: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.port = port
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event_id = self.headers.get("Flagsvc-Event-Id", "")
                status, delay = receiver._begin(event_id)
                try:
                    time.sleep(delay)
                    with receiver._lock:
                        receiver.received.append(Received(dict(self.headers), body))
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting: the answer has nowhere to go
                finally:
                    receiver._end(event_id)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # stop() waits for its next look at the flag: 0.5 s each by default, 0.05 s here
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _begin(self, event_id: str) -> tuple[int, float]:
        with self._lock:
            self._in_flight[event_id] += 1
            self.max_in_flight[event_id] = max(
                self.max_in_flight[event_id], self._in_flight[event_id]
            )
            b = self.behaviour
            status = b.statuses.pop(0) if b.statuses else b.status
            delay = b.delays.pop(0) if b.delays else b.delay
            return status, delay

    def _end(self, event_id: str) -> None:
        with self._lock:
            self._in_flight[event_id] -= 1


def free_port() -> int:
    """A port nothing listens on now (a receiver that is down binds it later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def receiving(port: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(port).start()
    try:
        yield receiver
    finally:
        receiver.stop()
