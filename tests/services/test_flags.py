"""Flags as use cases: creation in every environment, duplicates, archiving."""

from __future__ import annotations

import pytest

from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.roles import Role
from flagsvc.services import flags
from tests.services.use_cases import actions
from tests.services.use_cases import move
from tests.services.use_cases import new_flag


def test_create__one_event_a_state_per_environment_default_checklist(
    database, change_by, key_result_id
):
    new_flag(database, change_by(Role.ENGINEER), "search", key_result_id)
    with database.read() as session:
        detail = flags.get_flag_detail(session, "search")
        assert len(flags.missing_readiness(detail.flag)) == 4
    assert sorted(state.environment.key for state in detail.states) == [
        "development",
        "production",
        "staging",
    ]
    assert actions(database, "search") == ["flag.created"]


def test_create__taken_key__duplicate(database, change_by, key_result_id):
    new_flag(database, change_by(Role.ENGINEER), "search", key_result_id)
    with pytest.raises(DuplicateKeyError):
        new_flag(database, change_by(Role.ENGINEER), "search", key_result_id)


def test_create__unknown_key_result__invalid_field(database, change_by, key_result_id):
    with pytest.raises(InvalidFieldError):
        new_flag(database, change_by(Role.ENGINEER), "search", key_result_id + 1000)


def test_archive__while_it_reaches_someone__refused_then_allowed(
    database, change_by, key_result_id
):
    engineer = change_by(Role.ENGINEER)
    new_flag(database, engineer, "search", key_result_id)
    move(database, engineer, "search", "staging", "general", 10)
    with pytest.raises(ConflictError), database.write() as session:
        flags.archive_flag(session, engineer, "search")
    move(database, engineer, "search", "staging", "off")
    with database.write() as session:
        flags.archive_flag(session, engineer, "search")
    assert actions(database, "search")[-1] == "flag.archived"
