"""Flags: the definition (key, OKR key result, flow item, values) and its overview."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.domain.variations import ValueType
from flagsvc.services import flags
from flagsvc.services import variations
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.schemas import page
from flagsvc.web.schemas import page_schema
from flagsvc.web.shapes.flags import FlagCreateSchema
from flagsvc.web.shapes.flags import FlagListArgsSchema
from flagsvc.web.shapes.flags import FlagPatchSchema
from flagsvc.web.shapes.flags import VariationSchema
from flagsvc.web.shapes.flags import VariationsSchema
from flagsvc.web.shapes.flags import variation_set

blp = Blueprint(
    "flags",
    __name__,
    url_prefix="/api/v1/flags",
    description="Flags: the definition (key, OKR key result, flow item, values)",
)


"""Fields a PATCH cannot change, and where to change them instead."""


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
