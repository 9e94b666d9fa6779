"""Objectives and key results as use cases."""

from __future__ import annotations

from flagsvc.domain.roles import Role
from flagsvc.services import okrs
from tests.services.use_cases import actions


def test_key_result__current_starts_at_baseline_and_is_audited(database, change_by, key_result_id):
    with database.read() as session:
        key_result = okrs.get_key_result(session, key_result_id)
    assert key_result.current == key_result.baseline == 10
    assert actions(database)[-2:] == ["objective.created", "key_result.created"]


def test_update_objective__audited_with_before_and_after(database, change_by, key_result_id):
    with database.read() as session:
        objective_id = okrs.get_key_result(session, key_result_id).objective_id
    with database.write() as session:
        okrs.update_objective(session, change_by(Role.ENGINEER), objective_id, {"owner": "Bo"})
    assert actions(database)[-1] == "objective.updated"
