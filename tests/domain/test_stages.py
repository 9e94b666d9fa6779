"""The stage machine: which moves are allowed, which are gated, which are rollbacks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import InvalidTransitionError
from flagsvc.domain.errors import ReadinessRequiredError
from flagsvc.domain.stages import Gate
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import StagePosition
from flagsvc.domain.stages import is_rollback
from flagsvc.domain.stages import plan_move
from flagsvc.domain.stages import to_basis_points
from flagsvc.domain.stages import to_percent
from flagsvc.domain.stages import widens_exposure

OFF, EARLY, GENERAL, RELEASED, RETIRED = Stage
MISSING = ("docs", "announcement")
GATED_NOT_READY = Gate("checkout", "production", gated=True, missing_readiness=MISSING)
GATED_READY = Gate("checkout", "production", gated=True, missing_readiness=())
OPEN_NOT_READY = Gate("checkout", "staging", gated=False, missing_readiness=MISSING)


def at(stage: Stage, percent: str | int = 0) -> StagePosition:
    return StagePosition(stage, Decimal(percent))


@pytest.mark.parametrize(
    ("current", "stage", "percent", "expected"),
    [
        (at(OFF), EARLY, None, at(EARLY)),
        (at(OFF), GENERAL, None, at(GENERAL)),  # skipping ahead is allowed
        (at(EARLY), GENERAL, Decimal(10), at(GENERAL, 10)),
        (at(GENERAL, 10), GENERAL, Decimal("12.5"), at(GENERAL, "12.5")),
        (at(GENERAL, 40), GENERAL, Decimal(0), at(GENERAL, 0)),
        (at(GENERAL, 100), RELEASED, None, at(RELEASED)),  # only general keeps a ramp
        (at(GENERAL, 50), OFF, None, at(OFF)),
        (at(RELEASED), GENERAL, None, at(GENERAL)),  # back to general starts at 0 %
        (at(RELEASED), RETIRED, None, at(RETIRED)),
        (at(RETIRED), OFF, None, at(OFF)),
    ],
)
def test_plan_move__allowed_move__lands_on_target(current, stage, percent, expected):
    assert plan_move(current, stage, percent, GATED_READY) == expected


@pytest.mark.parametrize(
    ("current", "stage", "percent"),
    [
        (at(OFF), OFF, None),
        (at(GENERAL, 30), GENERAL, None),
        (at(GENERAL, 30), GENERAL, Decimal("30.00")),
        (at(RETIRED), RETIRED, None),
    ],
)
def test_plan_move__nothing_changes__invalid_transition(current, stage, percent):
    with pytest.raises(InvalidTransitionError, match="already"):
        plan_move(current, stage, percent, GATED_READY)


@pytest.mark.parametrize(
    ("current", "stage", "percent"),
    [
        (at(EARLY), GENERAL, None),
        (at(EARLY), RELEASED, None),
        (at(OFF), GENERAL, Decimal(5)),
        (at(GENERAL, 10), GENERAL, Decimal(50)),
        (at(GENERAL, 100), RELEASED, None),
        (at(RETIRED), RELEASED, None),  # retired ranks above released: not a way round
        (at(RETIRED), GENERAL, Decimal(100)),
        (at(RETIRED), GENERAL, None),
    ],
)
def test_plan_move__widening_in_gated_env_before_ready__readiness_required(current, stage, percent):
    with pytest.raises(ReadinessRequiredError) as raised:
        plan_move(current, stage, percent, GATED_NOT_READY)
    assert raised.value.missing == list(MISSING)
    assert "production" in raised.value.message


@pytest.mark.parametrize(
    ("current", "stage", "percent"),
    [
        (at(GENERAL, 50), GENERAL, Decimal(10)),  # ramp-down
        (at(GENERAL, 50), EARLY, None),  # rollback
        (at(RELEASED), OFF, None),
        (at(RELEASED), GENERAL, Decimal(100)),  # back down from released
        (at(EARLY), RETIRED, None),  # abandoning is never held
        (at(OFF), EARLY, None),  # cohorts first, always
    ],
)
def test_plan_move__not_widening__never_gated(current, stage, percent):
    assert plan_move(current, stage, percent, GATED_NOT_READY).stage is stage


@pytest.mark.parametrize(
    ("current", "stage", "percent"),
    [(at(EARLY), GENERAL, Decimal(100)), (at(GENERAL, 10), RELEASED, None)],
)
def test_plan_move__environment_not_gated__widening_allowed_before_ready(current, stage, percent):
    assert plan_move(current, stage, percent, OPEN_NOT_READY).stage is stage


@pytest.mark.parametrize("stage", [OFF, EARLY, RELEASED, RETIRED])
def test_plan_move__percent_for_other_stage__invalid_field(stage):
    with pytest.raises(InvalidFieldError) as raised:
        plan_move(at(GENERAL, 10), stage, Decimal(10), GATED_READY)
    assert raised.value.field == "rollout_percent"


@pytest.mark.parametrize("percent", [Decimal(-1), Decimal("100.01")])
def test_plan_move__percent_out_of_range__invalid_field(percent):
    with pytest.raises(InvalidFieldError, match="between 0 and 100"):
        plan_move(at(EARLY), GENERAL, percent, GATED_READY)


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        (at(OFF), at(EARLY), False),
        (at(EARLY), at(GENERAL), True),
        (at(EARLY), at(RELEASED), True),
        (at(GENERAL, 10), at(GENERAL, 11), True),
        (at(GENERAL, 10), at(GENERAL, 10), False),
        (at(GENERAL, 10), at(GENERAL, 9), False),
        (at(GENERAL, 100), at(RELEASED), True),
        (at(RELEASED), at(GENERAL, 100), False),
        (at(RELEASED), at(RETIRED), False),
        (at(RETIRED), at(RELEASED), True),
        (at(RETIRED), at(GENERAL, 0), True),
        (at(RETIRED), at(GENERAL, 100), True),
        (at(RELEASED), at(GENERAL, 0), False),
    ],
)
def test_widens_exposure__pairs__as_expected(current, target, expected):
    assert widens_exposure(current, target) is expected


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        (at(OFF), at(EARLY), False),
        (at(GENERAL, 50), at(GENERAL, 10), True),
        (at(GENERAL, 10), at(GENERAL, 50), False),
        (at(GENERAL, 50), at(EARLY), True),
        (at(RELEASED), at(OFF), True),
        (at(RELEASED), at(RETIRED), False),
        (at(RETIRED), at(RELEASED), True),
    ],
)
def test_is_rollback__pairs__as_expected(current, target, expected):
    assert is_rollback(current, target) is expected


def test_stage__rank__follows_forward_order():
    assert [stage.rank for stage in (OFF, EARLY, GENERAL, RELEASED, RETIRED)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("percent", "basis_points"),
    [("0.29", 29), ("0.01", 1), ("33.33", 3333), ("100", 10_000), ("0", 0)],
)
def test_to_basis_points__exact_for_two_decimals(percent, basis_points):
    assert to_basis_points(Decimal(percent)) == basis_points
    assert to_percent(basis_points) == Decimal(percent)
