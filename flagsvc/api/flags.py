"""Flags: the definition (key, OKR key result, flow item, payload) and its overview."""

from __future__ import annotations

import json
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
from flagsvc.api.schemas import key_field
from flagsvc.api.schemas import name_field
from flagsvc.api.schemas import page
from flagsvc.api.schemas import page_schema
from flagsvc.api.schemas import text_field
from flagsvc.domain.roles import Permission
from flagsvc.domain.stages import Stage
from flagsvc.services import flags

blp = Blueprint(
    "flags",
    __name__,
    url_prefix="/api/v1/flags",
    description="Flags: the definition (key, OKR key result, flow item, payload)",
)

F = TypeVar("F", bound="ma.fields.Field[Any]")
FLOW_ITEMS = ("feature", "defect", "risk", "debt")
PAYLOAD_MAX_BYTES = 64 * 1024
ROW_ID = validate.Range(min=1, max=2**31 - 1)


def no_nul(value: str) -> None:
    """Refuse NUL characters: PostgreSQL text cannot hold them (a 422, never a 500)."""
    if "\x00" in value:
        raise ma.ValidationError("must not contain NUL characters")


def nul_free(field: F) -> F:
    """Add the NUL check to a string field built by the shared helpers."""
    field.validators.append(no_nul)
    return field


def _payload_fits(value: Any) -> None:
    """Keep payloads small (they ship in every SDK snapshot) and strictly JSON."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (ValueError, RecursionError) as error:
        raise ma.ValidationError("must be plain JSON (no NaN or Infinity)") from error
    if len(text.encode()) > PAYLOAD_MAX_BYTES:
        raise ma.ValidationError(f"must be at most {PAYLOAD_MAX_BYTES} bytes as JSON")


def _payload(description: str) -> ma.fields.Raw:
    return ma.fields.Raw(
        allow_none=True, validate=_payload_fits, metadata={"description": description}
    )


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
    payload = _payload("Any JSON returned when the flag is on (≤ 64 KiB)")


class FlagPatchSchema(PromiseFreeSchema):
    name = nul_free(name_field())
    description = nul_free(text_field(5000))
    flow_item = _flow_item()
    key_result_id = _key_result_id()
    payload = _payload("Any JSON (≤ 64 KiB); null clears it")

    @ma.pre_load
    def _key_is_immutable(self, data: Any, **_kwargs: Any) -> Any:
        """Say why instead of a bare "unknown field": SDKs and code refer to the key."""
        if isinstance(data, Mapping) and "key" in data:
            raise ma.ValidationError(
                {"key": ["is immutable: code and SDKs refer to it; create a new flag instead"]}
            )
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
    payload = ma.fields.Raw(attribute="flag.payload", allow_none=True)
    version = ma.fields.Integer(attribute="flag.version")
    created_at = ma.fields.DateTime(attribute="flag.created_at")
    ready = ma.fields.Boolean()
    ready_at = ma.fields.DateTime(attribute="flag.ready_at", allow_none=True)
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
        """Update a flag: name, description, flow item, key result, payload (If-Match required)"""
        with db().write() as session:
            detail = flags.update_flag(
                session, change(), flag_key, data, precondition=blp.check_etag
            )
            blp.set_etag(flags.flag_etag(detail))
            return detail
