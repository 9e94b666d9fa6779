"""The readiness shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from flagsvc.web.schemas import StrictBoolean
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field
from flagsvc.web.schemas import name_field
from flagsvc.web.schemas import text_field
from flagsvc.web.shapes.flags import nul_free

MAX_ITEMS = 30


class ReadinessItemInputSchema(StrictSchema):
    key = key_field(required=True)
    label = nul_free(name_field(required=True))
    required = StrictBoolean(
        load_default=True, metadata={"description": "Needed for the flag to be ready"}
    )


class ReadinessChecklistSchema(StrictSchema):
    items = ma.fields.List(
        ma.fields.Nested(ReadinessItemInputSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
    )

    @ma.validates_schema
    def _keys_unique(self, data: dict[str, Any], **_kwargs: Any) -> None:
        seen: set[str] = set()
        errors: dict[int, dict[str, list[str]]] = {}
        for index, item in enumerate(data.get("items", [])):
            if item["key"] in seen:
                errors[index] = {"key": [f"duplicate key {item['key']!r}"]}
            seen.add(item["key"])
        if errors:
            raise ma.ValidationError(errors, field_name="items")


class ReadinessMarkSchema(StrictSchema):
    done = StrictBoolean(required=True)
    note = nul_free(text_field(2000, metadata={"description": "Left unchanged when omitted"}))
