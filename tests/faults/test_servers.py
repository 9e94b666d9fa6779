"""The private servers' ports: two xdist workers never reach for the same one."""

from __future__ import annotations

import socket

from tests.faults import servers


def test_pick_port__moved_by_worker_and_another_when_taken(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setattr(servers, "worker_index", lambda: 0)
        assert servers.pick_port(port) != port  # taken: any free port instead
        monkeypatch.setattr(servers, "worker_index", lambda: 1)
        assert servers.pick_port(port - 1) != port  # gw1's own number is the taken one
