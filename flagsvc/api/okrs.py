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
from flagsvc.api.context import state
from flagsvc.api.schemas import PageArgsSchema
from flagsvc.api.schemas import PromiseFreeSchema
from flagsvc.api.schemas import name_field
from flagsvc.api.schemas import page
from flagsvc.api.schemas import page_schema
from flagsvc.api.schemas import text_field
from flagsvc.api.timing import FlowItemSchema
from flagsvc.api.timing import FlowMetricsSchema
from flagsvc.api.timing import JsonRow
from flagsvc.api.timing import PeriodArgsSchema
from flagsvc.api.timing import PeriodSchema
from flagsvc.api.timing import flow_query
from flagsvc.api.timing import period_refused
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.roles import Permission
from flagsvc.services import okr_report
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


class ReportEnvironmentSchema(ma.Schema):
    stage = ma.fields.String()
    rollout_percent = ma.fields.Float()
    killed = ma.fields.Boolean()


class ReportReadinessSchema(ma.Schema):
    ready = ma.fields.Boolean()
    done = ma.fields.Integer()
    total = ma.fields.Integer()
    missing = ma.fields.List(ma.fields.String())


class ReportFlagSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String(attribute="detail.flag.name")
    flow_item = ma.fields.String(attribute="detail.flag.flow_item")
    environments = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(ReportEnvironmentSchema),
        attribute="detail.environments",
    )
    readiness = ma.fields.Function(
        lambda f: ReportReadinessSchema().dump({**f.detail.readiness, "ready": f.detail.ready})
    )
    early_adopter_reach = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "Explicit cohort members the flag is on for, per environment"},
    )
    flow = JsonRow(FlowItemSchema, allow_none=True)


class KeyResultReportSchema(ma.Schema):
    key_result = ma.fields.Nested(KeyResultSchema)
    flags = ma.fields.List(ma.fields.Nested(ReportFlagSchema))
    flow = ma.fields.Nested(FlowMetricsSchema)


class ReportObjectiveSchema(ma.Schema):
    id = ma.fields.Integer()
    title = ma.fields.String()
    description = ma.fields.String()
    period = ma.fields.String()
    owner = ma.fields.String()


class ObjectiveReportSchema(ma.Schema):
    objective = ma.fields.Nested(ReportObjectiveSchema)
    environment = ma.fields.String()
    period = ma.fields.Nested(PeriodSchema, attribute="window")
    flow = ma.fields.Nested(FlowMetricsSchema)
    key_results = ma.fields.List(ma.fields.Nested(KeyResultReportSchema))
    definitions = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


@blp.route("/objectives/<int:objective_id>/report")
class ObjectiveReport(MethodView):
    @requires(Permission.READ)
    @blp.arguments(PeriodArgsSchema, location="query")
    @blp.response(200, ObjectiveReportSchema)
    def get(self, args: dict[str, Any], objective_id: int) -> Any:
        """OKR report: per key result, its flags' stages, readiness, reach and flow (no dates)"""
        with db().read() as session:
            try:
                return okr_report.objective_report(
                    session, objective_id, flow_query(args), state().clock()
                )
            except InvalidFieldError as error:
                return period_refused(error)
