"""Objectives and key results that flags serve."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import validate

from flagsvc.api.auth import requires
from flagsvc.api.context import change
from flagsvc.api.context import db
from flagsvc.api.schemas import PageArgsSchema
from flagsvc.api.schemas import PromiseFreeSchema
from flagsvc.api.schemas import name_field
from flagsvc.api.schemas import page
from flagsvc.api.schemas import page_schema
from flagsvc.api.schemas import text_field
from flagsvc.domain.roles import Permission
from flagsvc.services import okrs

blp = Blueprint(
    "okrs",
    __name__,
    url_prefix="/api/v1",
    description="Objectives and key results that flags serve",
)

PERIOD = validate.Regexp(
    r"^\d{4}(-(Q[1-4]|H[12]|0[1-9]|1[0-2]))?$",
    error="must be a period such as 2026, 2026-Q4, 2026-H2 or 2026-11",
)


def _number(**kwargs: Any) -> ma.fields.Float:
    return ma.fields.Float(allow_nan=False, validate=validate.Range(min=-1e15, max=1e15), **kwargs)


class ObjectiveCreateSchema(PromiseFreeSchema):
    title = name_field(required=True)
    description = text_field(5000, load_default="")
    period = ma.fields.String(required=True, validate=PERIOD)
    owner = ma.fields.String(required=True, validate=validate.Length(min=1, max=100))


class ObjectivePatchSchema(PromiseFreeSchema):
    title = name_field()
    description = text_field(5000)
    period = ma.fields.String(validate=PERIOD)
    owner = ma.fields.String(validate=validate.Length(min=1, max=100))


class KeyResultCreateSchema(PromiseFreeSchema):
    title = name_field(required=True)
    metric = name_field(required=True)
    baseline = _number(required=True)
    target = _number(required=True)
    current = _number(metadata={"description": "Defaults to the baseline"})
    unit = text_field(40, load_default="")


class KeyResultPatchSchema(PromiseFreeSchema):
    title = name_field()
    metric = name_field()
    baseline = _number()
    target = _number()
    current = _number()
    unit = text_field(40)


class KeyResultSchema(ma.Schema):
    id = ma.fields.Integer()
    objective_id = ma.fields.Integer()
    title = ma.fields.String()
    metric = ma.fields.String()
    baseline = ma.fields.Float()
    target = ma.fields.Float()
    current = ma.fields.Float()
    unit = ma.fields.String()
    progress = ma.fields.Method("_progress", metadata={"description": "Share of baseline→target"})
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()

    def _progress(self, key_result: Any) -> float | None:
        span = key_result.target - key_result.baseline
        return None if span == 0 else round((key_result.current - key_result.baseline) / span, 4)


class ObjectiveSchema(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    description = ma.fields.String()
    period = ma.fields.String()
    owner = ma.fields.String()
    key_results = ma.fields.List(ma.fields.Nested(KeyResultSchema))
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class ObjectiveListArgsSchema(PageArgsSchema):
    period = ma.fields.String(validate=PERIOD)


ObjectivePageSchema = page_schema(ObjectiveSchema, "ObjectivePage")


@blp.route("/objectives")
class Objectives(MethodView):
    @requires(Permission.READ)
    @blp.arguments(ObjectiveListArgsSchema, location="query")
    @blp.response(200, ObjectivePageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List objectives with their key results"""
        with db().read() as session:
            rows = okrs.list_objectives(
                session, period=args.get("period"), after=args["after"], limit=args["limit"] + 1
            )
            return page(rows, args["limit"], lambda o: o.id)

    @requires(Permission.EDIT_OKRS)
    @blp.arguments(ObjectiveCreateSchema)
    @blp.response(201, ObjectiveSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create an objective"""
        with db().write() as session:
            objective = okrs.create_objective(session, change(), data)
            blp.set_etag(okrs.objective_etag(objective))
            return objective


@blp.route("/objectives/<int:objective_id>")
class ObjectiveById(MethodView):
    @requires(Permission.READ)
    @blp.etag
    @blp.response(200, ObjectiveSchema)
    def get(self, objective_id: int) -> Any:
        """Get an objective with its key results"""
        with db().read() as session:
            objective = okrs.get_objective(session, objective_id)
            blp.set_etag(okrs.objective_etag(objective))
            return objective

    @requires(Permission.EDIT_OKRS)
    @blp.etag
    @blp.arguments(ObjectivePatchSchema)
    @blp.response(200, ObjectiveSchema)
    def patch(self, data: dict[str, Any], objective_id: int) -> Any:
        """Update an objective (If-Match required)"""
        with db().write() as session:
            objective = okrs.update_objective(
                session, change(), objective_id, data, precondition=blp.check_etag
            )
            blp.set_etag(okrs.objective_etag(objective))
            return objective


@blp.route("/objectives/<int:objective_id>/key-results")
class KeyResults(MethodView):
    @requires(Permission.EDIT_OKRS)
    @blp.arguments(KeyResultCreateSchema)
    @blp.response(201, KeyResultSchema)
    def post(self, data: dict[str, Any], objective_id: int) -> Any:
        """Add a key result to an objective"""
        with db().write() as session:
            key_result = okrs.create_key_result(session, change(), objective_id, data)
            blp.set_etag(okrs.key_result_etag(key_result))
            return key_result


@blp.route("/key-results/<int:key_result_id>")
class KeyResultById(MethodView):
    @requires(Permission.READ)
    @blp.etag
    @blp.response(200, KeyResultSchema)
    def get(self, key_result_id: int) -> Any:
        """Get a key result"""
        with db().read() as session:
            key_result = okrs.get_key_result(session, key_result_id)
            blp.set_etag(okrs.key_result_etag(key_result))
            return key_result

    @requires(Permission.EDIT_OKRS)
    @blp.etag
    @blp.arguments(KeyResultPatchSchema)
    @blp.response(200, KeyResultSchema)
    def patch(self, data: dict[str, Any], key_result_id: int) -> Any:
        """Update a key result, e.g. its current value (If-Match required)"""
        with db().write() as session:
            key_result = okrs.update_key_result(
                session, change(), key_result_id, data, precondition=blp.check_etag
            )
            blp.set_etag(okrs.key_result_etag(key_result))
            return key_result
