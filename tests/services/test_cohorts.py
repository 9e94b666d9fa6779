"""Cohorts as use cases: creation, edits, bulk members and SDK enrolment."""

from __future__ import annotations

import pytest

from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import PermissionDeniedError
from flagsvc.domain.roles import Role
from flagsvc.services import cohorts
from flagsvc.services import flag_states
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from tests.services.use_cases import actions
from tests.services.use_cases import new_flag

SPEC = cohorts.CohortSpec("beta", "Beta testers", opt_in=True)


@pytest.fixture
def beta(database, change_by) -> str:
    with database.write() as session:
        cohorts.create_cohort(session, change_by(Role.ENGINEER), SPEC)
    return SPEC.key


def _sdk_change(clock, environment: str) -> Change:
    return Change(Actor("sdk", None, environment=environment, sdk_key_id=1), clock(), "r")


def test_create__audited_duplicate_refused(database, change_by, beta):
    assert actions(database)[-1] == "cohort.created"
    with pytest.raises(DuplicateKeyError), database.write() as session:
        cohorts.create_cohort(session, change_by(Role.ENGINEER), SPEC)


def test_update__no_change__nothing_written(database, change_by, beta):
    before = actions(database)
    with database.write() as session:
        cohorts.update_cohort(session, change_by(Role.ENGINEER), beta, {"name": SPEC.name})
    assert actions(database) == before


def test_members__idempotent_counts_say_what_changed(database, change_by, beta):
    with database.write() as session:
        first = cohorts.change_members(session, change_by(Role.ENGINEER), beta, ["a", "b"], [])
    with database.write() as session:
        again = cohorts.change_members(session, change_by(Role.ENGINEER), beta, ["a"], ["b"])
    assert (first.added, first.member_count) == (2, 2)
    assert (again.added, again.removed, again.member_count) == (0, 1, 1)


def test_enroll__only_where_the_key_reaches(database, change_by, clock, beta, key_result_id):
    new_flag(database, change_by(Role.ENGINEER), "f", key_result_id)
    where = flag_states.Where("f", "production")
    with database.write() as session:
        flag_states.set_cohorts(session, change_by(Role.ENGINEER), where, [beta])
    joined = cohorts.Membership(beta, "user-1", "production")
    with database.write() as session:
        assert cohorts.enroll(session, _sdk_change(clock, "production"), joined) is True
    with database.write() as session:  # already in: nothing to do
        assert cohorts.enroll(session, _sdk_change(clock, "production"), joined) is False
    elsewhere = cohorts.Membership(beta, "user-2", "development")
    with pytest.raises(PermissionDeniedError), database.write() as session:
        cohorts.enroll(session, _sdk_change(clock, "development"), elsewhere)
