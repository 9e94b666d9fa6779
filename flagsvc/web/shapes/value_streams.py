"""The value_streams shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from flagsvc.web.schemas import PromiseFreeSchema
from flagsvc.web.schemas import key_field
from flagsvc.web.schemas import name_field
from flagsvc.web.schemas import text_field


class ValueStreamCreateSchema(PromiseFreeSchema):
    key = key_field(required=True)
    name = name_field(required=True)
    description = text_field(5000, load_default="")
