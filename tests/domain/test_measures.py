"""Measured key results: direction, refusals and progress (pure rules)."""

from __future__ import annotations

import pytest

from flagsvc.domain import measures
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.measures import Direction
from flagsvc.domain.measures import FlowMeasure
from flagsvc.domain.measures import MeasureSpec


def test_direction__fixed_per_metric__share_follows_baseline_to_target():
    assert (
        measures.direction(MeasureSpec(FlowMeasure.FLOW_TIME_P85), 10, 5)
        is Direction.LOWER_IS_BETTER
    )
    assert (
        measures.direction(MeasureSpec(FlowMeasure.FLOW_VELOCITY), 1, 3)
        is Direction.HIGHER_IS_BETTER
    )
    share = MeasureSpec(FlowMeasure.FLOW_DISTRIBUTION, flow_item="defect")
    assert measures.direction(share, 0.4, 0.2) is Direction.LOWER_IS_BETTER
    assert measures.direction(share, 0.2, 0.4) is Direction.HIGHER_IS_BETTER


@pytest.mark.parametrize(
    ("spec", "baseline", "target", "field"),
    [
        (MeasureSpec(FlowMeasure.FLOW_LOAD), 5, 8, "target"),
        (MeasureSpec(FlowMeasure.FLOW_EFFICIENCY), 0.5, 0.3, "target"),
        (MeasureSpec(FlowMeasure.FLOW_LOAD), 5, 5, "target"),
        (MeasureSpec(FlowMeasure.FLOW_DISTRIBUTION), 0, 1, "measure.flow_item"),
        (MeasureSpec(FlowMeasure.FLOW_LOAD, objective_id=1, value_stream="x"), 5, 1,
         "measure.value_stream"),
    ],
)  # fmt: skip
def test_check__refusals_name_the_field(spec, baseline, target, field):
    with pytest.raises(InvalidFieldError) as refused:
        measures.check(spec, baseline, target)
    assert refused.value.field == field


def test_progress__either_direction__none_without_value():
    assert measures.progress(20, 10, 15) == 0.5
    assert measures.progress(1, 3, 2.5) == 0.75
    assert measures.progress(1, 3, None) is None


def test_spec__json_round_trip():
    spec = MeasureSpec(FlowMeasure.FLOW_DISTRIBUTION, "staging", 4, None, "risk", 14)
    assert MeasureSpec.from_json(spec.as_json()) == spec
