"""Readiness as use cases: marking items, becoming ready, waivers."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.roles import Role
from flagsvc.services import readiness
from tests.services.use_cases import actions
from tests.services.use_cases import new_flag


@pytest.fixture
def flag(database, change_by, key_result_id) -> str:
    new_flag(database, change_by(Role.ENGINEER), "launch", key_result_id)
    return "launch"


def _items(database, flag: str) -> list[str]:
    with database.read() as session:
        return [i.item_key for i in readiness.get_readiness(session, flag).readiness_items]


def test_mark__every_item__flag_ready_once(database, change_by, flag):
    for item in _items(database, flag):
        with database.write() as session:
            readiness.mark_item(session, change_by(Role.MARKETING), flag, item, {"done": True})
    with database.read() as session:
        assert readiness.get_readiness(session, flag).ready_at is not None
    assert actions(database, flag).count("flag.ready") == 1


def test_mark__last_two_items_at_once__the_second_sees_the_first_and_the_flag_is_ready(
    database, change_by, flag
):
    """The second mark waits for the flag row the first holds, then reads the checklist
    as the first left it: read in the statement that waited, it would come from the
    snapshot taken before the wait (item A still open), and the flag would never be ready."""
    *others, first, second = _items(database, flag)
    for item in others:
        with database.write() as session:
            readiness.mark_item(session, change_by(Role.MARKETING), flag, item, {"done": True})

    def mark_second() -> None:
        with database.write() as session:
            readiness.mark_item(session, change_by(Role.MARKETING), flag, second, {"done": True})

    waiting = threading.Thread(target=mark_second)
    with database.write() as holding:
        readiness.mark_item(holding, change_by(Role.MARKETING), flag, first, {"done": True})
        waiting.start()
        _until_a_lock_is_awaited(database)
    waiting.join(timeout=30)
    with database.read() as session:
        assert readiness.get_readiness(session, flag).ready_at is not None
    assert actions(database, flag).count("flag.ready") == 1


def _until_a_lock_is_awaited(database) -> None:
    """On PostgreSQL, until some transaction waits for a row lock (10 s at most); SQLite
    queues writers before they read anything, so there a moment's head start is all."""
    if database.is_sqlite:
        time.sleep(0.2)
        return
    deadline = time.monotonic() + 10
    with database.read_engine.connect() as connection:
        awaited = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
        while connection.execute(awaited).scalar_one() == 0:
            assert time.monotonic() < deadline, "the second mark never waited for the lock"
            time.sleep(0.01)


def test_mark__as_it_already_is__nothing_written(database, change_by, flag):
    item = _items(database, flag)[0]
    before = actions(database)
    with database.write() as session:
        readiness.mark_item(session, change_by(Role.MARKETING), flag, item, {"done": False})
    assert actions(database) == before


def test_mark__unknown_item__not_found(database, change_by, flag):
    with pytest.raises(NotFoundError), database.write() as session:
        readiness.mark_item(session, change_by(Role.MARKETING), flag, "nope", {"done": True})


def test_checklist__dropping_open_required_items__waived_and_named(database, change_by, flag):
    keep, *dropped = _items(database, flag)
    with database.write() as session:
        readiness.mark_item(session, change_by(Role.MARKETING), flag, keep, {"done": True})
    with database.write() as session:
        items = [{"key": keep, "label": "Kept", "required": True}]
        readiness.set_checklist(session, change_by(Role.MARKETING), flag, items)
    with database.read() as session:
        (waiver,) = readiness.waivers(session, flag)
        assert readiness.get_readiness(session, flag).ready_at is not None
    assert "readiness.waived" in actions(database, flag)
    assert sorted(item["key"] for item in waiver.items) == sorted(dropped)
