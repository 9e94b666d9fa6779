"""The okrs shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from flagsvc.domain import measures
from flagsvc.services import measured
from flagsvc.web.patterns import Pattern
from flagsvc.web.schemas import PageArgsSchema
from flagsvc.web.schemas import PromiseFreeSchema
from flagsvc.web.schemas import StrictFloat
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field
from flagsvc.web.schemas import name_field
from flagsvc.web.schemas import text_field

PERIOD = Pattern(
    r"^\d{4}(-(Q[1-4]|H[12]|0[1-9]|1[0-2]))?$",
    error="must be a period such as 2026, 2026-Q4, 2026-H2 or 2026-11",
)


def _number(**kwargs: Any) -> ma.fields.Float:
    return StrictFloat(allow_nan=False, validate=validate.Range(min=-1e15, max=1e15), **kwargs)


def _value_stream(**kwargs: Any) -> ma.fields.String:
    return key_field(
        allow_none=True,
        metadata={"description": "Key of the value stream it belongs to (its flags too)"},
        **kwargs,
    )


class ObjectiveCreateSchema(PromiseFreeSchema):
    title = name_field(required=True)
    description = text_field(5000, load_default="")
    period = ma.fields.String(required=True, validate=PERIOD)
    owner = ma.fields.String(required=True, validate=validate.Length(min=1, max=100))
    value_stream = _value_stream()


class ObjectivePatchSchema(PromiseFreeSchema):
    title = name_field()
    description = text_field(5000)
    period = ma.fields.String(validate=PERIOD)
    owner = ma.fields.String(validate=validate.Length(min=1, max=100))
    value_stream = _value_stream()


FLOW_ITEMS = ("feature", "defect", "risk", "debt")


class MeasureSchema(PromiseFreeSchema):
    """A flow metric the key result is measured by (its current value is computed)."""

    metric = ma.fields.String(
        required=True,
        validate=validate.OneOf([m.value for m in measures.FlowMeasure]),
        metadata={"description": "The flow metric; docs/flow-metrics.md defines each"},
    )
    environment = key_field(load_default="production")
    objective_id = ma.fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Scope: this objective's flags (null: every flag)"},
    )
    flow_item = ma.fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(FLOW_ITEMS),
        metadata={"description": "flow_distribution only: the kind of work whose share"},
    )
    value_stream = key_field(
        allow_none=True,
        load_default=None,
        metadata={"description": "Scope: this value stream's flags (not with objective_id)"},
    )
    window_days = ma.fields.Integer(
        strict=True,
        load_default=measures.DEFAULT_WINDOW_DAYS,
        validate=validate.Range(min=measures.MIN_WINDOW_DAYS, max=measures.MAX_WINDOW_DAYS),
        metadata={"description": "Rolling window each value is read over"},
    )

    @ma.post_load
    def _spec(self, data: dict[str, Any], **_kwargs: Any) -> measures.MeasureSpec:
        return measures.MeasureSpec(
            measures.FlowMeasure(data["metric"]),
            data["environment"],
            data["objective_id"],
            data["value_stream"],
            data["flow_item"],
            data["window_days"],
        )


def _measure_field(**kwargs: Any) -> ma.fields.Nested:
    return ma.fields.Nested(
        MeasureSchema,
        metadata={"description": "Measured from a flow metric (omit or null: typed in)"},
        **kwargs,
    )


class KeyResultCreateSchema(PromiseFreeSchema):
    title = name_field(required=True)
    metric = name_field(required=True)
    baseline = _number(required=True)
    target = _number(required=True)
    current = _number(metadata={"description": "Defaults to the baseline; not for measured"})
    unit = text_field(40, load_default="")
    measure = _measure_field(allow_none=True)


class KeyResultPatchSchema(PromiseFreeSchema):
    title = name_field()
    metric = name_field()
    baseline = _number()
    target = _number()
    current = _number(metadata={"description": "Typed-in key results only"})
    unit = text_field(40)
    measure = _measure_field(allow_none=True)


class ObjectiveListArgsSchema(PageArgsSchema):
    period = ma.fields.String(validate=PERIOD)


class HistoryArgsSchema(StrictSchema):
    weeks = ma.fields.Integer(
        load_default=measured.WEEKS,
        validate=validate.Range(min=1, max=measured.MAX_WEEKS),
        metadata={"description": "Weekly points of a measured key result's history"},
    )
