"""The webhook shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from flagsvc.domain.webhooks.events import ALL_EVENTS
from flagsvc.domain.webhooks.messages import Format
from flagsvc.web.schemas import StrictBoolean
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field
from flagsvc.web.schemas import name_field

_EVENTS = validate.OneOf(ALL_EVENTS, error="must be one of: {choices}")


def _list_of(field: ma.fields.Field[Any], most: int) -> ma.fields.List[Any]:
    return ma.fields.List(field, validate=validate.Length(max=most))


class WebhookFieldsSchema(StrictSchema):
    name = name_field(100)
    url = ma.fields.String(
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "http:// or https://; private addresses are refused unless "
                  "FLAGSVC_WEBHOOK_ALLOW_PRIVATE=1"},
    )  # fmt: skip
    events = _list_of(
        ma.fields.String(validate=_EVENTS),
        len(ALL_EVENTS),
    )
    value_streams = _list_of(key_field(), 100)
    environments = _list_of(key_field(), 100)
    format = ma.fields.String(validate=validate.OneOf([f.value for f in Format]))
    secret = ma.fields.String(
        validate=validate.Length(min=24, max=200),
        load_only=True,
        metadata={"description": "Write-only. Omit it and one is made (and shown once)."},
    )
    active = StrictBoolean()


class WebhookCreateSchema(WebhookFieldsSchema):
    name = name_field(100, required=True)
    url = ma.fields.String(required=True, validate=validate.Length(min=1, max=2000))


class WebhookPatchSchema(WebhookFieldsSchema):
    rotate_secret = StrictBoolean(
        metadata={"description": "true: make a new secret (shown once in this answer)"}
    )
