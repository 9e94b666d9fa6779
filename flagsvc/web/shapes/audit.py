"""The audit shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from flagsvc.web import cursors
from flagsvc.web.schemas import PageArgsSchema

EXPORT_FIELDS = (
    "seq", "occurred_at", "actor", "actor_role", "action", "entity_type", "entity_key",
    "flag_key", "environment", "before", "after", "request_id", "prev_hash", "hash",
)  # fmt: skip


class AuditArgsSchema(PageArgsSchema):
    MAX_POSITION = cursors.INT64_MAX  # sequence numbers are bigint
    flag = ma.fields.String(validate=validate.Length(min=1, max=100))
    actor = ma.fields.String(validate=validate.Length(min=1, max=100))
    action = ma.fields.String(validate=validate.Length(min=1, max=60))
    since = ma.fields.AwareDateTime(
        default_timezone=None, metadata={"description": "ISO 8601 with offset"}
    )
    until = ma.fields.AwareDateTime(default_timezone=None)
    format = ma.fields.String(
        load_default="json", validate=validate.OneOf(["json", "csv", "ndjson"])
    )

    @ma.validates_schema
    def _period_in_order(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ma.ValidationError("must be later than since", field_name="until")


class AuditEventSchema(ma.Schema):
    seq = ma.fields.Integer()
    occurred_at = ma.fields.DateTime()
    actor = ma.fields.String()
    actor_role = ma.fields.String()
    action = ma.fields.String()
    entity_type = ma.fields.String()
    entity_key = ma.fields.String()
    flag_key = ma.fields.String(allow_none=True)
    environment = ma.fields.String(allow_none=True)
    before = ma.fields.Raw(allow_none=True)
    after = ma.fields.Raw(allow_none=True)
    request_id = ma.fields.String()
    prev_hash = ma.fields.String()
    hash = ma.fields.String()
