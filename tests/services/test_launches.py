"""Scheduled launches as use cases: only ready flags in early access, exact ramps."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.roles import Role
from flagsvc.services import launches
from flagsvc.services import readiness
from flagsvc.services.flag_states import Where
from tests.services.use_cases import move
from tests.services.use_cases import new_flag

WHERE = Where("promo", "production")


@pytest.fixture
def in_early_access(database, change_by, key_result_id) -> Where:
    new_flag(database, change_by(Role.ENGINEER), WHERE.flag_key, key_result_id)
    move(database, change_by(Role.ENGINEER), WHERE.flag_key, WHERE.environment, "early_access")
    return WHERE


def _make_ready(database, change_by) -> None:
    with database.read() as session:
        items = [
            i.item_key for i in readiness.get_readiness(session, WHERE.flag_key).readiness_items
        ]
    for item in items:
        with database.write() as session:
            readiness.mark_item(
                session, change_by(Role.MARKETING), WHERE.flag_key, item, {"done": True}
            )


def _schedule(database, change_by, clock, percent: str = "100"):
    at = clock() + timedelta(days=1)
    with database.write() as session:
        return launches.schedule_launch(
            session, change_by(Role.MARKETING), WHERE, at, rollout_percent=Decimal(percent)
        )


def test_schedule__not_ready__conflict(database, change_by, clock, in_early_access):
    with pytest.raises(ConflictError):
        _schedule(database, change_by, clock)


def test_schedule__ready__ramp_kept_exactly(database, change_by, clock, in_early_access):
    _make_ready(database, change_by)
    detail = _schedule(database, change_by, clock, "0.29")
    assert detail.state.launch_rollout_basis_points == 29  # not 28: no float on the way
    assert launches.launch_percent(detail.state) == 0.29


def test_schedule__in_the_past__invalid(database, change_by, clock, in_early_access):
    _make_ready(database, change_by)
    with pytest.raises(InvalidFieldError), database.write() as session:
        launches.schedule_launch(session, change_by(Role.MARKETING), WHERE, clock())


def test_cancel__nothing_scheduled__conflict(database, change_by, in_early_access):
    with pytest.raises(ConflictError), database.write() as session:
        launches.cancel_launch(session, change_by(Role.MARKETING), WHERE)
