"""A client in a uWSGI master that forks its workers (no ``lazy-apps``), offline.

The master must run no thread of ours (a worker forked while one held the GIL hangs;
``_fork.py``); the live uWSGI runs are in ``test_fork.py``. Here a stand-in for uWSGI's
embedded ``uwsgi`` module says where the process is, so each case is checked directly:
no thread in the master, ``wait_until_ready`` fetching on the caller's thread (the
asyncio client too), threads as usual in a worker or with ``lazy-apps``, and a warning
without ``enable-threads``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from flagsvc_sdk import AsyncClient
from flagsvc_sdk import Client
from flagsvc_sdk import Status

from .conftest import FakeService

MASTER = {"master": True, "processes": b"2", "enable-threads": True}


def fake_uwsgi(monkeypatch: pytest.MonkeyPatch, options: dict[str, object], worker: int) -> None:
    """Make ``import uwsgi`` answer like uWSGI in a master (0) or a worker (1, 2, …)."""
    module = ModuleType("uwsgi")
    module.opt = options  # type: ignore[attr-defined]
    module.worker_id = lambda: worker  # type: ignore[attr-defined]
    module.mule_id = lambda: 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uwsgi", module)


def sdk_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("flagsvc")}


def started_by(make: Callable[[], Any]) -> tuple[Any, set[threading.Thread]]:
    before = sdk_threads()
    made = make()
    return made, sdk_threads() - before


def test_uwsgi_master__client__no_thread_and_wait_until_ready_fetches_here(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_uwsgi(monkeypatch, MASTER, worker=0)
    before = sdk_threads()
    client, threads = started_by(
        lambda: Client("http://flags.test", "k", transport=service.transport)
    )
    try:
        assert threads == set() and service.paths() == []
        assert client.wait_until_ready(5) is True  # fetched on this thread, at once
        assert service.paths() == ["/sdk/v1/snapshot"]
        assert client.version == 1 and client.status is Status.READY
        assert client.is_enabled("new-checkout", {"key": "u", "country": "NL"}) is True
        assert sdk_threads() == before  # still none of its own: no stream, no metrics
    finally:
        client.close()


def test_uwsgi_master__async_client__no_thread_and_wait_until_ready_fetches_here(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_uwsgi(monkeypatch, MASTER, worker=0)

    async def main() -> None:
        before = sdk_threads()
        async with AsyncClient("http://flags.test", "k", transport=service.transport) as flags:
            assert await flags.wait_until_ready(5) is True
            assert flags.version == 1
            assert sdk_threads() == before

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "worker"),
    [(MASTER, 1), ({**MASTER, "lazy-apps": b"true"}, 0), ({"processes": b"2"}, 0)],
    ids=["in a worker", "lazy-apps", "no master"],
)
def test_uwsgi__not_a_forking_master__threads_as_anywhere(
    service: FakeService, monkeypatch: pytest.MonkeyPatch, options: dict[str, object], worker: int
) -> None:
    fake_uwsgi(monkeypatch, options, worker)
    client, threads = started_by(
        lambda: Client("http://flags.test", "k", transport=service.transport)
    )
    try:
        assert {t.name for t in threads} >= {"flagsvc-updater", "flagsvc-stream"}
        assert client.wait_until_ready(5) is True
    finally:
        client.close()


def test_uwsgi__without_enable_threads__warned(
    service: FakeService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake_uwsgi(monkeypatch, {"master": True, "lazy-apps": True}, worker=1)
    with caplog.at_level(logging.WARNING, logger="flagsvc_sdk"):
        Client("http://flags.test", "k", transport=service.transport).close()
    assert "enable-threads" in caplog.text
