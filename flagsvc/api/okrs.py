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
from flagsvc.api.etags import optional_if_match
from flagsvc.api.patterns import Pattern
from flagsvc.api.schemas import PageArgsSchema
from flagsvc.api.schemas import PromiseFreeSchema
from flagsvc.api.schemas import StrictFloat
from flagsvc.api.schemas import StrictSchema
from flagsvc.api.schemas import key_field
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
from flagsvc.domain import measures
from flagsvc.domain.roles import Permission
from flagsvc.services import measured
from flagsvc.services import okr_report
from flagsvc.services import okrs

blp = Blueprint(
    "okrs",
    __name__,
    url_prefix="/api/v1",
    description="Objectives and key results that flags serve",
)

PERIOD = Pattern(
    r"^\d{4}(-(Q[1-4]|H[12]|0[1-9]|1[0-2]))?$",
    error="must be a period such as 2026, 2026-Q4, 2026-H2 or 2026-11",
)


def _number(**kwargs: Any) -> ma.fields.Float:
    return StrictFloat(allow_nan=False, validate=validate.Range(min=-1e15, max=1e15), **kwargs)


def _value_stream(**kwargs: Any) -> ma.fields.String:
    return key_field(
        allow_none=True,
        metadata={"description": "Key of the value stream it belongs to (its flags too)"},
        **kwargs,
    )


class ObjectiveCreateSchema(PromiseFreeSchema):
    title = name_field(required=True)
    description = text_field(5000, load_default="")
    period = ma.fields.String(required=True, validate=PERIOD)
    owner = ma.fields.String(required=True, validate=validate.Length(min=1, max=100))
    value_stream = _value_stream()


class ObjectivePatchSchema(PromiseFreeSchema):
    title = name_field()
    description = text_field(5000)
    period = ma.fields.String(validate=PERIOD)
    owner = ma.fields.String(validate=validate.Length(min=1, max=100))
    value_stream = _value_stream()


FLOW_ITEMS = ("feature", "defect", "risk", "debt")


class MeasureSchema(PromiseFreeSchema):
    """A flow metric the key result is measured by (its current value is computed)."""

    metric = ma.fields.String(
        required=True,
        validate=validate.OneOf([m.value for m in measures.FlowMeasure]),
        metadata={"description": "The flow metric; docs/flow-metrics.md defines each"},
    )
    environment = key_field(load_default="production")
    objective_id = ma.fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Scope: this objective's flags (null: every flag)"},
    )
    flow_item = ma.fields.String(
        allow_none=True,
        load_default=None,
        validate=validate.OneOf(FLOW_ITEMS),
        metadata={"description": "flow_distribution only: the kind of work whose share"},
    )
    value_stream = key_field(
        allow_none=True,
        load_default=None,
        metadata={"description": "Scope: this value stream's flags (not with objective_id)"},
    )
    window_days = ma.fields.Integer(
        strict=True,
        load_default=measures.DEFAULT_WINDOW_DAYS,
        validate=validate.Range(min=measures.MIN_WINDOW_DAYS, max=measures.MAX_WINDOW_DAYS),
        metadata={"description": "Rolling window each value is read over"},
    )

    @ma.post_load
    def _spec(self, data: dict[str, Any], **_kwargs: Any) -> measures.MeasureSpec:
        return measures.MeasureSpec(
            measures.FlowMeasure(data["metric"]),
            data["environment"],
            data["objective_id"],
            data["value_stream"],
            data["flow_item"],
            data["window_days"],
        )


def _measure_field(**kwargs: Any) -> ma.fields.Nested:
    return ma.fields.Nested(
        MeasureSchema,
        metadata={"description": "Measured from a flow metric (omit or null: typed in)"},
        **kwargs,
    )


class KeyResultCreateSchema(PromiseFreeSchema):
    title = name_field(required=True)
    metric = name_field(required=True)
    baseline = _number(required=True)
    target = _number(required=True)
    current = _number(metadata={"description": "Defaults to the baseline; not for measured"})
    unit = text_field(40, load_default="")
    measure = _measure_field(allow_none=True)


class KeyResultPatchSchema(PromiseFreeSchema):
    title = name_field()
    metric = name_field()
    baseline = _number()
    target = _number()
    current = _number(metadata={"description": "Typed-in key results only"})
    unit = text_field(40)
    measure = _measure_field(allow_none=True)


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


class HistoryArgsSchema(StrictSchema):
    weeks = ma.fields.Integer(
        load_default=measured.WEEKS,
        validate=validate.Range(min=1, max=measured.MAX_WEEKS),
        metadata={"description": "Weekly points of a measured key result's history"},
    )


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
            return okr_report.objective_report(
                session, objective_id, flow_query(args), state().clock()
            )
