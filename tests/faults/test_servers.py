"""The private servers' ports: two xdist workers never reach for the same one."""

from __future__ import annotations

import socket

import pytest

from tests.faults import servers


@pytest.mark.parametrize(("worker", "number"), [("gw0", 0), ("gw12", 12), ("", 0), ("main", 0)])
def test_worker_number(monkeypatch, worker, number):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    assert servers._worker_number() == number


def test_pick_port__moved_by_worker_and_another_when_taken(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
        assert servers.pick_port(port) != port  # taken: any free port instead
        monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
        assert servers.pick_port(port - 1) != port  # gw1's own number is the taken one
