"""Flags: the definition (key, OKR key result, flow item, values) and its overview."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import TypeVar

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate

from flagsvc.api.auth import requires
from flagsvc.api.context import change
from flagsvc.api.context import db
from flagsvc.api.schemas import PageArgsSchema
from flagsvc.api.schemas import PromiseFreeSchema
from flagsvc.api.schemas import StrictSchema
from flagsvc.api.schemas import key_field
from flagsvc.api.schemas import name_field
from flagsvc.api.schemas import page
from flagsvc.api.schemas import page_schema
from flagsvc.api.schemas import text_field
from flagsvc.domain.flow import FLOW_ITEMS
from flagsvc.domain.roles import Permission
from flagsvc.domain.stages import Stage
from flagsvc.domain.variations import DESCRIPTION_MAX
from flagsvc.domain.variations import ValueType
from flagsvc.domain.variations import VariationSet
from flagsvc.domain.variations import problems
from flagsvc.services import flags
from flagsvc.services import variations

blp = Blueprint(
    "flags",
    __name__,
    url_prefix="/api/v1/flags",
    description="Flags: the definition (key, OKR key result, flow item, values)",
)

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
"""Fields a PATCH cannot change, and where to change them instead."""


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


class FlagReadinessSummarySchema(ma.Schema):
    done = ma.fields.Integer()
    total = ma.fields.Integer()
    missing = ma.fields.List(ma.fields.String())


class FlagEnvironmentSummarySchema(ma.Schema):
    stage = ma.fields.String()
    rollout_percent = ma.fields.Float()
    killed = ma.fields.Boolean()


class FlagSchema(ma.Schema):
    key = ma.fields.String(attribute="flag.key")
    name = ma.fields.String(attribute="flag.name")
    description = ma.fields.String(attribute="flag.description")
    flow_item = ma.fields.String(attribute="flag.flow_item")
    key_result_id = ma.fields.Integer(attribute="flag.key_result_id")
    objective_id = ma.fields.Integer()
    value_type = ma.fields.String(attribute="flag.value_type")
    variations = ma.fields.List(ma.fields.Nested(VariationSchema), attribute="flag.variations")
    on_variation = ma.fields.String(attribute="flag.on_variation")
    off_variation = ma.fields.String(attribute="flag.off_variation", allow_none=True)
    version = ma.fields.Integer(attribute="flag.version")
    created_at = ma.fields.DateTime(attribute="flag.created_at")
    ready = ma.fields.Boolean()
    ready_at = ma.fields.DateTime(attribute="flag.ready_at", allow_none=True)
    archived_at = ma.fields.DateTime(attribute="flag.archived_at", allow_none=True)
    readiness = ma.fields.Nested(FlagReadinessSummarySchema)
    environments = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(FlagEnvironmentSummarySchema)
    )


FlagPageSchema = page_schema(FlagSchema, "FlagPage")


@blp.route("")
class Flags(MethodView):
    @requires(Permission.READ)
    @blp.arguments(FlagListArgsSchema, location="query")
    @blp.response(200, FlagPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List flags with their readiness and stage in every environment"""
        limit = args.pop("limit")
        with db().read() as session:
            rows = flags.list_flags(session, flags.FlagQuery(**args), limit + 1)
            return page(rows, limit, lambda detail: detail.flag.id)

    @requires(Permission.EDIT_FLAGS)
    @blp.etag
    @blp.arguments(FlagCreateSchema)
    @blp.response(201, FlagSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a flag (dark in every environment, default readiness checklist)"""
        with db().write() as session:
            detail = flags.create_flag(session, change(), data)
            blp.set_etag(flags.flag_etag(detail))
            return detail


@blp.route("/<string:flag_key>")
class FlagByKey(MethodView):
    @requires(Permission.READ)
    @blp.etag
    @blp.response(200, FlagSchema)
    def get(self, flag_key: str) -> Any:
        """Get a flag with its readiness and stage in every environment"""
        with db().read() as session:
            detail = flags.get_flag_detail(session, flag_key)
            blp.set_etag(flags.flag_etag(detail))
            return detail

    @requires(Permission.EDIT_FLAGS)
    @blp.etag
    @blp.arguments(FlagPatchSchema)
    @blp.response(200, FlagSchema)
    def patch(self, data: dict[str, Any], flag_key: str) -> Any:
        """Update a flag: name, description, flow item, key result (If-Match required)"""
        with db().write() as session:
            detail = flags.update_flag(
                session, change(), flag_key, data, precondition=blp.check_etag
            )
            blp.set_etag(flags.flag_etag(detail))
            return detail


@blp.route("/<string:flag_key>/archive")
class FlagArchive(MethodView):
    @requires(Permission.EDIT_FLAGS)
    @blp.response(200, FlagSchema)
    def post(self, flag_key: str) -> Any:
        """Archive a flag that serves nobody: left out of lists, its history kept

        409 while it is in early access, general rollout or released anywhere (retire it
        or turn it off there first). Its state cannot change until it is restored.
        """
        with db().write() as session:
            return flags.archive_flag(session, change(), flag_key)


@blp.route("/<string:flag_key>/unarchive")
class FlagUnarchive(MethodView):
    @requires(Permission.EDIT_FLAGS)
    @blp.response(200, FlagSchema)
    def post(self, flag_key: str) -> Any:
        """Restore an archived flag to the lists"""
        with db().write() as session:
            return flags.unarchive_flag(session, change(), flag_key)


@blp.route("/<string:flag_key>/variations")
class FlagVariations(MethodView):
    @requires(Permission.EDIT_FLAGS)
    @blp.etag
    @blp.arguments(VariationsSchema)
    @blp.response(200, FlagSchema)
    def put(self, data: dict[str, Any], flag_key: str) -> Any:
        """Replace a typed flag's variations and what it serves on and off (If-Match required)

        Values must be of the flag's type (422 naming the field). A variation a cohort
        still serves cannot be removed (409). While readiness is incomplete and the flag
        has a state in a gated environment (retired too), the off variation cannot change
        (409 naming the missing items): everyone outside early access would get the new value.
        """
        with db().write() as session:
            value_type = ValueType(flags.get_flag(session, flag_key).value_type)
            detail = variations.set_variations(
                session,
                change(),
                flag_key,
                variation_set(value_type, data),
                precondition=blp.check_etag,
            )
            blp.set_etag(flags.flag_etag(detail))
            return detail
