"""Value streams: teams of teams delivering to customers, and their flow side by side.

The comparison lives at ``/api/v1/flow/value-streams``, not under
``/api/v1/value-streams/…``, where it would be the address of a stream keyed ``compare``.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.api.timing import FlowMetricsSchema
from flagsvc.api.timing import PeriodSchema
from flagsvc.domain.roles import Permission
from flagsvc.services import flow
from flagsvc.services import value_streams
from flagsvc.web.context import change
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.timing import PeriodArgsSchema
from flagsvc.web.shapes.value_streams import ValueStreamCreateSchema

blp = Blueprint(
    "value_streams",
    __name__,
    url_prefix="/api/v1",
    description="Value streams (Flow Framework) and their flow side by side",
)


class ValueStreamSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    description = ma.fields.String()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class ValueStreamListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ValueStreamSchema))


@blp.route("/value-streams")
class ValueStreams(MethodView):
    @requires(Permission.READ)
    @blp.response(200, ValueStreamListSchema)
    def get(self) -> Any:
        """List value streams (by key)"""
        with db().read() as session:
            return {"items": value_streams.list_streams(session)}

    @requires(Permission.EDIT_OKRS)
    @blp.arguments(ValueStreamCreateSchema)
    @blp.response(201, ValueStreamSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a value stream; objectives (and so their flags) then name it"""
        with db().write() as session:
            return value_streams.create_stream(session, change(), data)


@blp.route("/value-streams/<string:key>")
class ValueStreamByKey(MethodView):
    @requires(Permission.READ)
    @blp.response(200, ValueStreamSchema)
    def get(self, key: str) -> Any:
        """Get a value stream"""
        with db().read() as session:
            return value_streams.get_stream(session, key)


class StepSchema(ma.Schema):
    median_days = ma.fields.Float(allow_none=True)
    total_days = ma.fields.Float()


class StepBottleneckSchema(ma.Schema):
    step = ma.fields.String(
        metadata={"description": "building | waiting_for_readiness | early_access | ramp"}
    )
    median_days = ma.fields.Float()


class HoldsBackSchema(StepBottleneckSchema):
    value_stream = ma.fields.String(allow_none=True)


class StreamFlowSchema(ma.Schema):
    value_stream = ma.fields.String(attribute="key", allow_none=True)
    name = ma.fields.String()
    flow = ma.fields.Nested(FlowMetricsSchema, attribute="metrics")
    steps = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(StepSchema))
    bottleneck = ma.fields.Nested(StepBottleneckSchema, allow_none=True)
    in_flight_now = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())


class ComparisonSchema(ma.Schema):
    environment = ma.fields.String()
    period = ma.fields.Nested(PeriodSchema, attribute="window")
    value_streams = ma.fields.List(ma.fields.Nested(StreamFlowSchema), attribute="streams")
    holds_back = ma.fields.Nested(
        HoldsBackSchema,
        allow_none=True,
        metadata={"description": "The stream and step with the longest median wait"},
    )


@blp.route("/flow/value-streams")
class Comparison(MethodView):
    @requires(Permission.READ)
    @blp.arguments(PeriodArgsSchema, location="query")
    @blp.response(200, ComparisonSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Flow per value stream: where items wait, which stream and step hold delivery back"""
        query = flow.FlowQuery(args["environment"], None, args.get("since"), args.get("until"))
        with db().read() as session:
            return value_streams.compare(session, query, state().clock())
