"""Audit exports hold no database connection while their client reads slowly.

The pool is made small (``FLAGSVC_DB_POOL_SIZE=1``: one connection kept, two more under
load, a two-second wait for one): more exports than that are opened and left unread
after their first rows, as slow clients leave them, and other requests are still
served. Before, each export held its connection until its last row was read.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Caller
from tests.ui.conftest import UiClient

POOL = 1
CONNECTIONS = 3 * POOL  # the pool and its overflow
SLOW_READERS = CONNECTIONS + 2


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"db_pool_size": POOL, "db_pool_timeout_seconds": 2.0}


@pytest.fixture
def events(engineer: Caller) -> int:
    """A few hundred events, so an export spans several pages."""
    for n in range(12):
        body = {"key": f"export-{n}", "name": "c", "rules": [], "opt_in": False}
        assert engineer.post("/api/v1/cohorts", json=body).status_code == 201
        add = {"add": [f"u{n}-{i}" for i in range(3)]}
        assert engineer.post(f"/api/v1/cohorts/export-{n}/members", json=add).status_code == 200
    return int(engineer.get("/api/v1/audit/head").json["seq"])


class SlowReader(threading.Thread):
    """A client that reads an export's first chunk, then waits before reading the rest.

    A thread of its own, as each request has in the service: a streamed response keeps
    its request context pushed while it is suspended, in the thread that reads it.
    """

    def __init__(self, open_export: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.open_export = open_export
        self.started, self.go = threading.Event(), threading.Event()
        self.body = b""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            response = self.open_export()
            assert response.status_code == 200, response.status_code
            chunks = iter(response.response)
            self.body = next(chunks)  # the first rows are written: the export is under way
            self.started.set()
            self.go.wait(60)
            self.body += b"".join(chunks)
            response.close()
        except BaseException as error:  # reported by the test
            self.error = error
            self.started.set()


def _slow_readers(open_export: Callable[[], Any]) -> list[SlowReader]:
    readers = [SlowReader(open_export) for _ in range(SLOW_READERS)]
    for reader in readers:
        reader.start()
        assert reader.started.wait(30)
    return readers


def _finish(readers: list[SlowReader]) -> list[bytes]:
    for reader in readers:
        reader.go.set()
    for reader in readers:
        reader.join(60)
        assert reader.error is None, reader.error
    return [reader.body for reader in readers]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_api_export__more_slow_readers_than_connections__others_served_and_exports_whole(
    viewer, engineer, events, fmt
):
    # Given more exports open and unread than the pool has connections
    readers = _slow_readers(lambda: viewer.get(f"/api/v1/audit?format={fmt}", buffered=False))
    # When someone else needs the database (a read and a write)
    # Then both are served, not left waiting for a connection
    assert engineer.get("/api/v1/flags").status_code == 200
    body = {"key": "after", "name": "c", "rules": [], "opt_in": False}
    assert engineer.post("/api/v1/cohorts", json=body).status_code == 201
    # And every export, read to its end, holds every event up to then (and in order)
    for text in _finish(readers):
        if fmt == "csv":
            seqs = [int(row["seq"]) for row in csv.DictReader(io.StringIO(text.decode()))]
        else:
            seqs = [json.loads(line)["seq"] for line in text.decode().splitlines()]
        assert seqs[:events] == list(range(1, events + 1))


def test_ui_export__more_slow_readers_than_connections__others_served(
    client, secrets, engineer, events
):
    ui = UiClient(client, secrets["viewer"])
    readers = _slow_readers(lambda: ui.client.get("/ui/audit/export.csv", buffered=False))
    assert engineer.get("/api/v1/flags").status_code == 200
    for text in _finish(readers):
        assert len(list(csv.DictReader(io.StringIO(text.decode())))) >= events
