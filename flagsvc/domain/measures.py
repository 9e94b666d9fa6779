"""Measured key results: a key result bound to a flow metric instead of a typed-in number.

Kersten's *OKRs & DevOps*: good key results are flow metrics, leading indicators of
value, measured per value stream. A measured key result names the metric, the scope it
is read over (environment, and optionally an objective or a value stream) and a rolling
window; its current value and weekly history are computed from the audit on every read,
so nobody can type a better number in.

Direction: for flow time, wait for readiness and flow load *lower is better*; for
velocity and efficiency *higher is better*. A target on the worse side of the baseline
is refused, since no team should aim at slower delivery. The share of one kind of work
in the flow distribution has no better side of its own (more defects fixed can be the
goal as much as fewer), so its direction is the one from baseline to target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flagsvc.domain.errors import InvalidFieldError


class FlowMeasure(StrEnum):
    """The flow metrics a key result can be measured by."""

    FLOW_TIME_P50 = "flow_time_p50"
    FLOW_TIME_P85 = "flow_time_p85"
    FLOW_LOAD = "flow_load"
    FLOW_VELOCITY = "flow_velocity"
    FLOW_EFFICIENCY = "flow_efficiency"
    FLOW_DISTRIBUTION = "flow_distribution"
    WAIT_FOR_READINESS_P50 = "wait_for_readiness_p50"


class Direction(StrEnum):
    """Which way progress goes."""

    LOWER_IS_BETTER = "lower_is_better"
    HIGHER_IS_BETTER = "higher_is_better"


FIXED_DIRECTION: Mapping[FlowMeasure, Direction] = {
    FlowMeasure.FLOW_TIME_P50: Direction.LOWER_IS_BETTER,
    FlowMeasure.FLOW_TIME_P85: Direction.LOWER_IS_BETTER,
    FlowMeasure.FLOW_LOAD: Direction.LOWER_IS_BETTER,
    FlowMeasure.WAIT_FOR_READINESS_P50: Direction.LOWER_IS_BETTER,
    FlowMeasure.FLOW_VELOCITY: Direction.HIGHER_IS_BETTER,
    FlowMeasure.FLOW_EFFICIENCY: Direction.HIGHER_IS_BETTER,
}
UNITS: Mapping[FlowMeasure, str] = {
    FlowMeasure.FLOW_TIME_P50: "days",
    FlowMeasure.FLOW_TIME_P85: "days",
    FlowMeasure.FLOW_LOAD: "flags in flight",
    FlowMeasure.WAIT_FOR_READINESS_P50: "days",
    FlowMeasure.FLOW_VELOCITY: "releases per week",
    FlowMeasure.FLOW_EFFICIENCY: "ratio",
    FlowMeasure.FLOW_DISTRIBUTION: "share",
}
DEFAULT_WINDOW_DAYS = 28
MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 7, 365


@dataclass(frozen=True, slots=True)
class MeasureSpec:
    """What a measured key result reads: metric, scope and rolling window."""

    metric: FlowMeasure
    environment: str = "production"
    objective_id: int | None = None
    value_stream: str | None = None
    flow_item: str | None = None  # flow_distribution only: the kind of work whose share
    window_days: int = DEFAULT_WINDOW_DAYS

    def as_json(self) -> dict[str, Any]:
        """The spec as stored in ``key_results.measure`` and shown by the API."""
        return {
            "metric": self.metric.value,
            "environment": self.environment,
            "objective_id": self.objective_id,
            "value_stream": self.value_stream,
            "flow_item": self.flow_item,
            "window_days": self.window_days,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MeasureSpec:
        """A stored spec (the API checked it when it was written)."""
        return cls(
            FlowMeasure(data["metric"]),
            data.get("environment") or "production",
            data.get("objective_id"),
            data.get("value_stream"),
            data.get("flow_item"),
            int(data.get("window_days") or DEFAULT_WINDOW_DAYS),
        )


def direction(spec: MeasureSpec, baseline: float, target: float) -> Direction:
    """The way progress goes for ``spec`` (distribution: from baseline towards target)."""
    fixed = FIXED_DIRECTION.get(spec.metric)
    if fixed is not None:
        return fixed
    return Direction.LOWER_IS_BETTER if target < baseline else Direction.HIGHER_IS_BETTER


def check(spec: MeasureSpec, baseline: float, target: float) -> None:
    """Refuse a spec that cannot be measured or a target on the worse side.

    :raise InvalidFieldError: naming the field (``measure.flow_item``, ``target``, ...).
    """
    if spec.metric is FlowMeasure.FLOW_DISTRIBUTION and spec.flow_item is None:
        raise InvalidFieldError(
            "measure.flow_item", "is required for flow_distribution (feature, defect, risk, debt)"
        )
    if spec.metric is not FlowMeasure.FLOW_DISTRIBUTION and spec.flow_item is not None:
        raise InvalidFieldError("measure.flow_item", "applies to flow_distribution only")
    if spec.objective_id is not None and spec.value_stream is not None:
        raise InvalidFieldError(
            "measure.value_stream", "give an objective or a value stream as the scope, not both"
        )
    if target == baseline:
        raise InvalidFieldError("target", "must differ from the baseline")
    fixed = FIXED_DIRECTION.get(spec.metric)
    if fixed is Direction.LOWER_IS_BETTER and target > baseline:
        raise InvalidFieldError(
            "target", f"lower {spec.metric.value} is better: the target must be below the baseline"
        )
    if fixed is Direction.HIGHER_IS_BETTER and target < baseline:
        raise InvalidFieldError(
            "target",
            f"higher {spec.metric.value} is better: the target must be above the baseline",
        )


MIN_SPAN = 1e-9
"""The smallest distance between a key result's baseline and target (other than none).

Progress divides by ``target - baseline``: a target a hair from its baseline (``5e-324``
from 0) made it ``Infinity``, invalid JSON on the API and a 500 on every page showing
the key result (the flag pages' kill switch included)."""


def span_problem(baseline: float, target: float) -> str | None:
    """Why ``target`` cannot go with ``baseline`` (None: it can; equal is fine: a key
    result that holds a value)."""
    span = abs(target - baseline)
    if span != 0 and not span >= MIN_SPAN:
        return f"must differ from the baseline by at least {MIN_SPAN:g} (or equal it)"
    return None


def progress(baseline: float, target: float, current: float | None) -> float | None:
    """Share of the way from baseline to target (either direction; None: no value, or
    no finite one, as for rows stored before ``MIN_SPAN``)."""
    span = target - baseline
    if current is None or span == 0:
        return None
    share = (current - baseline) / span
    return round(share, 4) if math.isfinite(share) else None
