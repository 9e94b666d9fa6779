"""The tokens shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from flagsvc.domain.roles import Role
from flagsvc.domain.validation import TOKEN_NAME_MAX
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import name_field


class TokenCreateSchema(StrictSchema):
    name = name_field(
        TOKEN_NAME_MAX, required=True, metadata={"description": "Unique; the audit's actor"}
    )
    role = ma.fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
