"""A booting worker builds, compiles and compresses every environment's snapshot before
it takes traffic; a database it cannot read leaves that to the first requests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flagsvc_sdk.engine import Snapshot
from flask import Flask
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flagsvc.delivery.warmup import warm_up
from flagsvc.delivery.warmup import warm_up_within
from flagsvc.services.environments import list_environments
from flagsvc.serving import warm_up_app
from flagsvc.state import AppState


def _keys(state: AppState) -> list[str]:
    with state.db.read() as session:
        return [environment.key for environment in list_environments(session)]


def test_warm_up__every_environment_is_ready_to_serve_with_no_work_left(app: Flask) -> None:
    state: AppState = app.extensions["flagsvc"]
    keys = _keys(state)
    assert len(keys) >= 2  # the default environments

    assert warm_up(state.snapshots, state.db.read) == keys

    assert state.snapshots.builds == len(keys)
    heads = state.snapshots.heads
    assert heads is not None and heads.reads == 0  # the first request still reads the head
    assert state.snapshots.ready(keys[0]) is None
    heads.current()  # what the first request does
    for key in keys:
        entry = state.snapshots.ready(key)  # what the SDK fast path answers from
        assert entry is not None
        assert isinstance(entry.compiled, Snapshot)
        assert "gzip" in entry.compressed
    for key in keys:
        state.snapshots.get(state.db.read, key)
    assert state.snapshots.builds == len(keys)  # the first requests build nothing


@contextmanager
def _unreadable() -> Iterator[Session]:
    raise OperationalError("SELECT 1", {}, Exception("connection refused"))
    yield  # pragma: no cover


def test_warm_up__a_database_it_cannot_read_is_logged_not_raised(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    state: AppState = app.extensions["flagsvc"]
    with caplog.at_level(logging.WARNING, logger="flagsvc.delivery.warmup"):
        assert warm_up(state.snapshots, _unreadable) == []
    assert "worker warm-up stopped after 0 environments" in caplog.text
    assert state.snapshots.builds == 0


def test_warm_up_app__warms_flagsvc_and_leaves_any_other_app_alone(app: Flask) -> None:
    state: AppState = app.extensions["flagsvc"]
    warm_up_app(lambda environ, start_response: [])  # gunicorn serving something else
    warm_up_app(None)
    assert state.snapshots.builds == 0

    warm_up_app(app)  # what gunicorn's worker holds as ``wsgi``

    assert state.snapshots.builds == len(_keys(state))


def test_warm_up_within__a_database_that_never_answers__the_worker_serves_meanwhile(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    state: AppState = app.extensions["flagsvc"]
    answer = threading.Event()

    @contextmanager
    def hanging() -> Iterator[Session]:
        answer.wait(30)  # a connect to an address that drops every packet, then fails
        raise OperationalError("SELECT 1", {}, Exception("connection timed out"))
        yield  # pragma: no cover

    try:
        with caplog.at_level(logging.WARNING, logger="flagsvc.delivery.warmup"):
            assert warm_up_within(state.snapshots, hanging, seconds=0.05) is None
        assert "worker warm-up still running after 0.05 s; serving meanwhile" in caplog.text
    finally:
        answer.set()  # the warm-up then ends on its own
        for thread in threading.enumerate():
            if thread.name == "flagsvc-warm-up":
                thread.join(30)
    assert state.snapshots.builds == 0


def test_warm_up_within__returns_what_was_warmed(app: Flask) -> None:
    state: AppState = app.extensions["flagsvc"]
    assert warm_up_within(state.snapshots, state.db.read) == _keys(state)
