"""Stage moves, the kill switch and cohorts as use cases: the gate, the audit, no HTTP."""

from __future__ import annotations

import pytest

from flagsvc.domain.errors import GateError
from flagsvc.domain.errors import InvalidTransitionError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.errors import ReadinessRequiredError
from flagsvc.domain.roles import Role
from flagsvc.services import cohorts
from flagsvc.services import flag_states
from flagsvc.services import readiness
from tests.services.use_cases import actions
from tests.services.use_cases import move
from tests.services.use_cases import new_flag

FLAG = "checkout"


@pytest.fixture
def flag(database, change_by, key_result_id) -> str:
    new_flag(database, change_by(Role.ENGINEER), FLAG, key_result_id)
    return FLAG


def _mark_all_done(database, change_by, key: str) -> None:
    with database.read() as session:
        items = [item.item_key for item in readiness.get_readiness(session, key).readiness_items]
    for item in items:
        with database.write() as session:
            readiness.mark_item(session, change_by(Role.MARKETING), key, item, {"done": True})


def test_create__dark_everywhere(database, flag):
    for environment in ("development", "staging", "production"):
        with database.read() as session:
            detail = flag_states.get_state(session, flag_states.Where(flag, environment))
        assert detail.state.stage == "off" and not detail.state.killed


def test_move__ungated__any_stage_without_readiness(database, change_by, flag):
    detail = move(database, change_by(Role.ENGINEER), flag, "development", "general", 30)
    assert (detail.state.stage, detail.state.rollout_basis_points) == ("general", 3000)
    assert actions(database, flag)[-1] == "flag.stage_changed"


@pytest.mark.parametrize("path", [["released"], ["general"], ["retired", "released"]])
def test_move__gated_not_ready__general_exposure_refused_whatever_the_path(
    database, change_by, flag, path
):
    engineer = change_by(Role.ENGINEER)
    *before, target = path
    for stage in before:
        move(database, engineer, flag, "production", stage)
    with pytest.raises(ReadinessRequiredError):
        move(database, engineer, flag, "production", target, 100 if target == "general" else None)
    with database.read() as session:
        state = flag_states.get_state(session, flag_states.Where(flag, "production")).state
    assert state.stage == (before[-1] if before else "off")


def test_move__gated_ready__general_allowed_and_audited_once(database, change_by, flag):
    _mark_all_done(database, change_by, flag)
    before = len(actions(database, flag))
    move(database, change_by(Role.ENGINEER), flag, "production", "general", 25)
    assert actions(database, flag)[before:] == ["flag.stage_changed"]


def test_move__rollback__never_gated(database, change_by, flag):
    engineer = change_by(Role.ENGINEER)
    move(database, engineer, flag, "production", "early_access")
    detail = move(database, engineer, flag, "production", "off")
    assert detail.state.stage == "off"


def test_move__to_where_it_is__refused_and_nothing_written(database, change_by, flag):
    before = actions(database)
    with pytest.raises(InvalidTransitionError):
        move(database, change_by(Role.ENGINEER), flag, "development", "off")
    assert actions(database) == before


def test_move__unknown_environment__not_found(database, change_by, flag):
    with pytest.raises(NotFoundError):
        move(database, change_by(Role.ENGINEER), flag, "moon", "early_access")


def test_kill__twice__one_event(database, change_by, flag):
    where = flag_states.Where(flag, "development")
    for _ in range(2):
        with database.write() as session:
            flag_states.set_killed(session, change_by(Role.ENGINEER), where, True)
    assert actions(database, flag).count("flag.killed") == 1


def test_cohorts__catch_all_in_gated_not_ready__refused(database, change_by, flag):
    spec = cohorts.CohortSpec(
        "everyone", "Everyone", rules=[{"attribute": "key", "op": "neq", "values": ["x"]}]
    )
    with database.write() as session:
        cohorts.create_cohort(session, change_by(Role.ENGINEER), spec)
    where = flag_states.Where(flag, "production")
    with pytest.raises(GateError), database.write() as session:
        flag_states.set_cohorts(session, change_by(Role.ENGINEER), where, ["everyone"])
    with database.write() as session:  # not gated: a fair cohort for a general rollout
        flag_states.set_cohorts(
            session, change_by(Role.ENGINEER), flag_states.Where(flag, "staging"), ["everyone"]
        )
