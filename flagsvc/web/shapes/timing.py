"""The timing shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field


class PeriodArgsSchema(StrictSchema):
    environment = key_field(load_default="production")
    since = ma.fields.AwareDateTime(
        default_timezone=None,
        metadata={"description": "ISO 8601 with offset; default: 90 days ago"},
    )
    until = ma.fields.AwareDateTime(
        default_timezone=None, metadata={"description": "ISO 8601 with offset; default: now"}
    )

    @ma.validates_schema
    def _period_in_order(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ma.ValidationError("must be later than since", field_name="until")


class FlowArgsSchema(PeriodArgsSchema):
    objective = ma.fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    value_stream = key_field(metadata={"description": "Only this value stream's flags"})
    format = ma.fields.String(
        load_default="json", validate=validate.OneOf(["json", "csv", "ndjson"])
    )


class StaleArgsSchema(StrictSchema):
    released_days = ma.fields.Integer(
        strict=False, load_default=30, validate=validate.Range(min=0, max=3650)
    )
    unevaluated_days = ma.fields.Integer(
        strict=False, load_default=30, validate=validate.Range(min=0, max=3650)
    )
