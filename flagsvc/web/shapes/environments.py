"""The environments shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from flagsvc.web.schemas import StrictBoolean
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field
from flagsvc.web.schemas import name_field


class EnvironmentCreateSchema(StrictSchema):
    key = key_field(required=True)
    name = name_field(required=True)
    gated = StrictBoolean(
        load_default=False,
        metadata={"description": "General rollout here needs complete launch readiness"},
    )
