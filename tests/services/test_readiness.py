"""Readiness as use cases: marking items, becoming ready, waivers."""

from __future__ import annotations

import pytest

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
