"""Objectives and key results that flags serve."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.api.etags import optional_if_match
from flagsvc.api.timing import FlowItemSchema
from flagsvc.api.timing import FlowMetricsSchema
from flagsvc.api.timing import FlowRow
from flagsvc.api.timing import PeriodSchema
from flagsvc.api.timing import flow_query
from flagsvc.domain.roles import Permission
from flagsvc.services import measured
from flagsvc.services import okr_report
from flagsvc.services import okrs
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.schemas import page
from flagsvc.web.schemas import page_schema
from flagsvc.web.shapes.okrs import HistoryArgsSchema
from flagsvc.web.shapes.okrs import KeyResultCreateSchema
from flagsvc.web.shapes.okrs import KeyResultPatchSchema
from flagsvc.web.shapes.okrs import ObjectiveCreateSchema
from flagsvc.web.shapes.okrs import ObjectiveListArgsSchema
from flagsvc.web.shapes.okrs import ObjectivePatchSchema
from flagsvc.web.shapes.timing import DEFINITIONS
from flagsvc.web.shapes.timing import PeriodArgsSchema

blp = Blueprint(
    "okrs",
    __name__,
    url_prefix="/api/v1",
    description="Objectives and key results that flags serve",
)


class MeasureOutSchema(ma.Schema):
    metric = ma.fields.String()
    environment = ma.fields.String()
    objective_id = ma.fields.Integer(allow_none=True)
    value_stream = ma.fields.String(allow_none=True)
    flow_item = ma.fields.String(allow_none=True)
    window_days = ma.fields.Integer()


class PointSchema(ma.Schema):
    week = ma.fields.String(metadata={"description": "ISO week the point closes"})
    at = ma.fields.DateTime()
    value = ma.fields.Float(allow_none=True, metadata={"description": "null: no data"})


class KeyResultSchema(ma.Schema):
    """A key result; ``row`` is the stored one, measured values come from the audit."""

    id = ma.fields.Integer(attribute="row.id")
    objective_id = ma.fields.Integer(attribute="row.objective_id")
    title = ma.fields.String(attribute="row.title")
    metric = ma.fields.String(attribute="row.metric")
    baseline = ma.fields.Float(attribute="row.baseline")
    target = ma.fields.Float(attribute="row.target")
    current = ma.fields.Float(
        allow_none=True,
        metadata={"description": "Measured: computed now from the audit (null: no data)"},
    )
    unit = ma.fields.String(attribute="row.unit")
    progress = ma.fields.Float(
        allow_none=True, metadata={"description": "Share of baseline→target"}
    )
    direction = ma.fields.String(metadata={"description": "lower_is_better | higher_is_better"})
    measured = ma.fields.Function(lambda view: view.measurement is not None)
    measure = ma.fields.Nested(MeasureOutSchema, attribute="row.measure", allow_none=True)
    as_of = ma.fields.DateTime(allow_none=True)
    history = ma.fields.List(
        ma.fields.Nested(PointSchema),
        allow_none=True,
        metadata={"description": "Measured: value at the end of each ISO week, then now"},
    )
    version = ma.fields.Integer(attribute="row.version")
    created_at = ma.fields.DateTime(attribute="row.created_at")


class ObjectiveSchema(ma.Schema):
    id = ma.fields.Integer(attribute="objective.id")
    title = ma.fields.String(attribute="objective.title")
    description = ma.fields.String(attribute="objective.description")
    period = ma.fields.String(attribute="objective.period")
    owner = ma.fields.String(attribute="objective.owner")
    value_stream = ma.fields.String(
        allow_none=True, metadata={"description": "Key of its value stream (null: none)"}
    )
    key_results = ma.fields.List(ma.fields.Nested(KeyResultSchema))
    version = ma.fields.Integer(attribute="objective.version")
    created_at = ma.fields.DateTime(attribute="objective.created_at")


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
            shown = measured.objective_views(session, rows, state().clock())
            return page(shown, args["limit"], lambda o: o.objective.id)

    @requires(Permission.EDIT_OKRS)
    @blp.arguments(ObjectiveCreateSchema)
    @blp.response(201, ObjectiveSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create an objective"""
        with db().write() as session:
            objective = okrs.create_objective(session, change(), data)
            blp.set_etag(okrs.objective_etag(objective))
            return _objective_view(session, objective)


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
            return _objective_view(session, objective)

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
            return _objective_view(session, objective)

    @requires(Permission.EDIT_OKRS)
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT")
    def delete(self, objective_id: int) -> Any:
        """Delete an objective without key results (409 while it has some)"""
        with db().write() as session:
            okrs.delete_objective(session, change(), objective_id, optional_if_match(blp))
        return None


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
            return _key_result_view(session, key_result)


def _key_result_view(session: Any, key_result: Any, weeks: int = measured.WEEKS) -> Any:
    return measured.views(session, [key_result], state().clock(), weeks)[0]


def _objective_view(session: Any, objective: Any) -> Any:
    return measured.objective_views(session, [objective], state().clock())[0]


@blp.route("/key-results/<int:key_result_id>")
class KeyResultById(MethodView):
    @requires(Permission.READ)
    @blp.etag
    @blp.arguments(HistoryArgsSchema, location="query")
    @blp.response(200, KeyResultSchema)
    def get(self, args: dict[str, Any], key_result_id: int) -> Any:
        """Get a key result"""
        with db().read() as session:
            key_result = okrs.get_key_result(session, key_result_id)
            blp.set_etag(okrs.key_result_etag(key_result))
            return _key_result_view(session, key_result, args["weeks"])

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
            return _key_result_view(session, key_result)

    @requires(Permission.EDIT_OKRS)
    @blp.response(204)
    @blp.alt_response(409, response="CONFLICT")
    def delete(self, key_result_id: int) -> Any:
        """Delete a key result no flag serves (409 naming a flag that does)"""
        with db().write() as session:
            okrs.delete_key_result(session, change(), key_result_id, optional_if_match(blp))
        return None


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
    flow = FlowRow(FlowItemSchema, allow_none=True)


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
    definitions = ma.fields.Function(
        lambda _report: DEFINITIONS,
        metadata={"description": "What each metric means (name: text)"},
    )


@blp.route("/objectives/<int:objective_id>/report")
class ObjectiveReport(MethodView):
    @requires(Permission.READ)
    @blp.arguments(PeriodArgsSchema, location="query")
    @blp.response(200, ObjectiveReportSchema)
    def get(self, args: dict[str, Any], objective_id: int) -> Any:
        """OKR report: per key result, its flags' stages, readiness, reach and flow (no dates)"""
        with db().read() as session:
            return okr_report.objective_report(
                session, objective_id, flow_query(args), state().clock()
            )
