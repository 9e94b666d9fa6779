"""The gevent worker flagsvc runs: keep-alive connections take turns (real gunicorn).

A connection whose next request is already there when its answer goes out used to be
answered again and again without the event loop running: the others waited for it to
run dry (bench/README.md, "Where the 304 tail came from").
"""

from __future__ import annotations

import socket
from importlib import metadata
from typing import Any

from gunicorn import util

from flagsvc import gevent_worker
from flagsvc.serving import settings
from tests import serving_probe

PIPELINED = 100


def test_settings__gevent__names_the_turn_taking_worker():
    assert settings({})["worker_class"] == gevent_worker.PATH
    assert util.load_class(gevent_worker.PATH) is gevent_worker.TurnTakingGeventWorker
    assert settings({"FLAGSVC_WORKER_CLASS": "gthread"})["worker_class"] == "gthread"


def test_entry_points_read_once__same_answers_without_reading_packages_again(monkeypatch):
    groups = ("console_scripts", "gevent.plugins.monkey.will_patch_all", "pytest11")
    expected = {group: sorted(map(str, metadata.entry_points(group=group))) for group in groups}
    original = metadata.entry_points
    reads: list[Any] = []
    real_distributions = metadata.distributions

    def counted(**kwargs: Any) -> Any:
        reads.append(kwargs)
        return real_distributions(**kwargs)

    monkeypatch.setattr(metadata, "distributions", counted)
    with gevent_worker.entry_points_read_once():
        read_on_entry = len(reads)
        for _ in range(25):  # patch_all's lookups
            answers = {g: sorted(map(str, metadata.entry_points(group=g))) for g in groups}
            assert answers == expected
        assert len(reads) == read_on_entry  # no package read again
    assert metadata.entry_points is original


def _read_answers(conn: socket.socket, count: int) -> None:
    received = b""
    while received.count(b"HTTP/1.1 200") < count:
        chunk = conn.recv(65536)
        assert chunk, "connection closed early"
        received += chunk


def test_pipelined_connection__another_connection_answered_before_it_runs_dry(tmp_path):
    flag = tmp_path / "second-sent"
    pipeline = f"GET /spin HTTP/1.1\r\nHost: probe\r\nX-Wait-For: {flag}\r\n\r\n"
    pipeline += "".join(f"GET /a{i} HTTP/1.1\r\nHost: probe\r\n\r\n" for i in range(PIPELINED))
    with serving_probe.running() as port:
        first = socket.create_connection(("127.0.0.1", port), timeout=30)
        second = socket.create_connection(("127.0.0.1", port), timeout=30)
        with first, second:
            first.sendall(pipeline.encode())  # all there before the first answer goes out
            second.sendall(b"GET /b HTTP/1.1\r\nHost: probe\r\n\r\n")
            flag.touch()  # the worker, spinning on the first request, may go on now
            _read_answers(second, 1)
            _read_answers(first, PIPELINED + 1)
        order = serving_probe.get(port, "/order")
    assert sorted(order) == sorted(["/spin", "/b", *(f"/a{i}" for i in range(PIPELINED))])
    assert order.index("/b") < 10  # without turns: 101, after the whole pipeline
