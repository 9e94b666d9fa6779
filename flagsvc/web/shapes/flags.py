"""The flags shapes both HTTP faces use: the API validates with them, the UI's forms too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import TypeVar

import marshmallow as ma
from marshmallow import validate

from flagsvc.domain.flow import FLOW_ITEMS
from flagsvc.domain.stages import Stage
from flagsvc.domain.variations import DESCRIPTION_MAX
from flagsvc.domain.variations import ValueType
from flagsvc.domain.variations import VariationSet
from flagsvc.domain.variations import problems
from flagsvc.web.schemas import PageArgsSchema
from flagsvc.web.schemas import PromiseFreeSchema
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field
from flagsvc.web.schemas import name_field
from flagsvc.web.schemas import text_field

F = TypeVar("F", bound="ma.fields.Field[Any]")


ROW_ID = validate.Range(min=1, max=2**31 - 1)


def no_nul(value: str) -> None:
    """Refuse NUL characters: PostgreSQL text cannot hold them (a 422, never a 500)."""
    if "\x00" in value:
        raise ma.ValidationError("must not contain NUL characters")


def nul_free(field: F) -> F:
    """Add the NUL check to a string field built by the shared helpers."""
    field.validators.append(no_nul)
    return field


MOVED_FIELDS = {
    "key": "is immutable: code and SDKs refer to it; create a new flag instead",
    "value_type": "is fixed when the flag is created: code reads the flag as that type",
    "payload": "flags serve variations now: PUT /api/v1/flags/<key>/variations",
    "variations": "is replaced whole: PUT /api/v1/flags/<key>/variations (If-Match)",
    "on_variation": "is set with the variations: PUT /api/v1/flags/<key>/variations",
    "off_variation": "is set with the variations: PUT /api/v1/flags/<key>/variations",
}


class VariationSchema(StrictSchema):
    key = key_field(required=True, metadata={"description": "What SDKs report as the variant"})
    value = ma.fields.Raw(
        required=True, allow_none=True, metadata={"description": "Of the flag's value type"}
    )
    description = nul_free(text_field(DESCRIPTION_MAX, load_default=""))


class VariationsSchema(StrictSchema):
    """A flag's values; the type is checked against the flag's (422 naming the field)."""

    variations = ma.fields.List(ma.fields.Nested(VariationSchema), required=True)
    on_variation = key_field(
        required=True, metadata={"description": "Served by general rollout and release"}
    )
    off_variation = key_field(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Served when off, killed, excluded or not reached; "
            "null: the caller's default"
        },
    )


def variation_set(value_type: ValueType, data: Mapping[str, Any]) -> VariationSet:
    """The loaded fields of :class:`VariationsSchema` as the domain's set."""
    return VariationSet(value_type, data["variations"], data["on_variation"], data["off_variation"])


def _flow_item(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=validate.OneOf(FLOW_ITEMS),
        metadata={"description": "Flow Framework item type"},
        **kwargs,
    )


def _key_result_id(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True, validate=ROW_ID, metadata={"description": "The key result served"}, **kwargs
    )


class FlagCreateSchema(PromiseFreeSchema):
    key = key_field(required=True)
    name = nul_free(name_field(required=True))
    description = nul_free(text_field(5000, load_default=""))
    flow_item = _flow_item(required=True)
    key_result_id = _key_result_id(required=True)
    value_type = ma.fields.String(
        load_default=ValueType.BOOLEAN.value,
        validate=validate.OneOf([t.value for t in ValueType]),
        metadata={"description": "Fixed at creation; boolean flags have on (true) and off (false)"},
    )
    variations = ma.fields.List(
        ma.fields.Nested(VariationSchema),
        metadata={"description": "Typed flags: 1-20 variations (values ≤ 64 KiB together)"},
    )
    on_variation = key_field(metadata={"description": "Typed flags: served on (required)"})
    off_variation = key_field(
        allow_none=True,
        metadata={"description": "Typed flags: served off; null or absent: the caller's default"},
    )

    @ma.pre_load
    def _payload_moved(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, Mapping) and "payload" in data:
            raise ma.ValidationError({"payload": [MOVED_FIELDS["payload"]]})
        return data

    @ma.validates_schema
    def _values_fit_the_type(self, data: dict[str, Any], **_kwargs: Any) -> None:
        value_type = ValueType(data.get("value_type", ValueType.BOOLEAN))
        given = [f for f in ("variations", "on_variation", "off_variation") if f in data]
        if value_type is ValueType.BOOLEAN:
            if given:
                raise ma.ValidationError(
                    {
                        f: ["boolean flags have the fixed variations on (true) and off (false)"]
                        for f in given
                    }
                )
            return
        missing = [f for f in ("variations", "on_variation") if f not in data]
        if missing:
            raise ma.ValidationError({f: [f"is required for a {value_type} flag"] for f in missing})
        candidate = VariationSet(
            value_type, data["variations"], data["on_variation"], data.get("off_variation")
        )
        found = problems(candidate)
        if found:
            raise ma.ValidationError({path: [reason] for path, reason in found})

    @ma.post_load
    def _values(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        value_type = ValueType(data.pop("value_type"))
        fields = [data.pop(f, None) for f in ("variations", "on_variation", "off_variation")]
        if value_type is not ValueType.BOOLEAN:
            data["values"] = VariationSet(value_type, *fields)
        return data


class FlagPatchSchema(PromiseFreeSchema):
    name = nul_free(name_field())
    description = nul_free(text_field(5000))
    flow_item = _flow_item()
    key_result_id = _key_result_id()

    @ma.pre_load
    def _say_where_instead(self, data: Any, **_kwargs: Any) -> Any:
        """Say why instead of a bare "unknown field" for what a PATCH cannot change."""
        if isinstance(data, Mapping):
            moved = {f: [reason] for f, reason in MOVED_FIELDS.items() if f in data}
            if moved:
                raise ma.ValidationError(moved)
        return data


class FlagListArgsSchema(PageArgsSchema):
    q = ma.fields.String(
        validate=[validate.Length(min=1, max=100), no_nul],
        metadata={"description": "Substring of the key or the name"},
    )
    flow_item = _flow_item()
    key_result_id = ma.fields.Integer(validate=ROW_ID)
    objective_id = ma.fields.Integer(validate=ROW_ID)
    stage = ma.fields.String(
        validate=validate.OneOf([s.value for s in Stage]),
        metadata={"description": "At this stage (in `environment` if given, else in any)"},
    )
    environment = key_field(metadata={"description": "Environment for `stage`"})
    archived = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "true: the archived flags only (they are left out otherwise)"},
    )

    @ma.validates_schema
    def _environment_needs_stage(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "environment" in data and "stage" not in data:
            raise ma.ValidationError("filters only together with stage", field_name="environment")
