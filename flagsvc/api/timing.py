"""Release timing: timelines, flow metrics and stale flags, all derived from the audit.

Stale flags live at ``/api/v1/stale-flags``, not ``/api/v1/flags/stale``: the latter
is the address of a flag whose key is ``stale``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from flagsvc.api.auth import requires
from flagsvc.domain.roles import Permission
from flagsvc.services import flow
from flagsvc.services import stale
from flagsvc.services import timeline
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.csv_cells import safe_row
from flagsvc.web.shapes.timing import DEFINITIONS
from flagsvc.web.shapes.timing import ITEM_FIELDS
from flagsvc.web.shapes.timing import FlowArgsSchema
from flagsvc.web.shapes.timing import StaleArgsSchema
from flagsvc.web.shapes.timing import item_row

blp = Blueprint(
    "timing",
    __name__,
    url_prefix="/api/v1",
    description="Release timelines, flow metrics and stale flags, derived from the audit",
)


def _day(**kwargs: Any) -> ma.fields.Float:
    return ma.fields.Float(allow_none=True, **kwargs)


# --- timeline -------------------------------------------------------------------------


class StagePeriodSchema(ma.Schema):
    stage = ma.fields.String()
    rollout_percent = ma.fields.Float()
    start = ma.fields.DateTime(data_key="from")
    end = ma.fields.DateTime(data_key="to", allow_none=True, metadata={"description": "null: now"})


class MarkerSchema(ma.Schema):
    action = ma.fields.String(metadata={"description": "killed | resumed"})
    at = ma.fields.DateTime()
    actor = ma.fields.String()


class LaunchMarkerSchema(MarkerSchema):
    action = ma.fields.String(metadata={"description": "launch_ran | launch_skipped"})
    planned_at = ma.fields.DateTime(allow_none=True)


class ReadyTimesSchema(ma.Schema):
    first = ma.fields.DateTime(attribute="ready_first", allow_none=True)
    latest = ma.fields.DateTime(attribute="ready_latest", allow_none=True)


class EnvironmentTimelineSchema(ma.Schema):
    environment = ma.fields.String()
    created = ma.fields.DateTime(metadata={"description": "When the flag was created"})
    ready = ma.fields.Function(
        lambda t: ReadyTimesSchema().dump(t), metadata={"description": "Flag-wide"}
    )
    first_early_access = ma.fields.DateTime(allow_none=True)
    general_started = ma.fields.DateTime(allow_none=True)
    released = ma.fields.DateTime(allow_none=True)
    retired = ma.fields.DateTime(allow_none=True)
    kill_switch = ma.fields.List(ma.fields.Nested(MarkerSchema))
    launches = ma.fields.List(ma.fields.Nested(LaunchMarkerSchema))
    stages = ma.fields.List(ma.fields.Nested(StagePeriodSchema))


class TimelineSchema(ma.Schema):
    flag = ma.fields.String()
    created = ma.fields.DateTime()
    ready = ma.fields.Function(
        lambda t: {**ReadyTimesSchema().dump(t), "now": t.ready_now},
        metadata={"description": "first and latest flag.ready, and whether it is ready now"},
    )
    environments = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Nested(EnvironmentTimelineSchema)
    )


@blp.route("/flags/<string:flag_key>/timeline")
class FlagTimeline(MethodView):
    @requires(Permission.READ)
    @blp.response(200, TimelineSchema)
    def get(self, flag_key: str) -> Any:
        """Get a flag's release timeline per environment, read from its audit events"""
        with db().read() as session:
            return timeline.flag_timeline(session, flag_key)


# --- flow metrics ---------------------------------------------------------------------


class StatsSchema(ma.Schema):
    count = ma.fields.Integer()
    mean_days = _day()
    p50_days = _day()
    p85_days = _day()


class WeekLoadSchema(ma.Schema):
    week = ma.fields.String(metadata={"description": "ISO week, e.g. 2026-W41"})
    at = ma.fields.DateTime()
    in_flight = ma.fields.Integer()


class WeekVelocitySchema(ma.Schema):
    week = ma.fields.String()
    released = ma.fields.Integer()


class LoadSchema(ma.Schema):
    now = ma.fields.Integer()
    weekly = ma.fields.List(ma.fields.Nested(WeekLoadSchema))


class VelocitySchema(ma.Schema):
    total = ma.fields.Integer()
    per_week = ma.fields.Float()
    weekly = ma.fields.List(ma.fields.Nested(WeekVelocitySchema))


class BottleneckSchema(ma.Schema):
    stage = ma.fields.String()
    median_days = ma.fields.Float()


class ShareSchema(ma.Schema):
    count = ma.fields.Integer()
    share = ma.fields.Float()


def _shares() -> ma.fields.Dict:
    return ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(ShareSchema))


class DistributionSchema(ma.Schema):
    released = _shares()
    in_flight = _shares()


class FlowMetricsSchema(ma.Schema):
    flow_time = ma.fields.Nested(StatsSchema)
    wait_for_readiness = ma.fields.Nested(StatsSchema)
    waiting_for_readiness_now = ma.fields.Integer()
    flow_efficiency = ma.fields.Float(allow_none=True)
    flow_load = ma.fields.Nested(LoadSchema)
    flow_velocity = ma.fields.Nested(VelocitySchema)
    flow_distribution = ma.fields.Nested(DistributionSchema)
    stage_median_days = ma.fields.Dict(keys=ma.fields.String(), values=_day())
    bottleneck = ma.fields.Nested(BottleneckSchema, allow_none=True)


class JsonRows(ma.fields.List[Any]):
    """Rows already made JSON (``item_row``): documented by ``inner``, sent as they are.

    A report may list thousands of flags; dumping each of their fifteen values
    through marshmallow would cost more than computing the report.
    """

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class FlowRow(ma.fields.Nested):
    """One flag's flow as its JSON row (``item_row``; documented by its schema)."""

    # marshmallow's own Nested renames Field's first parameter; match Nested
    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return None if nested_obj is None else item_row(nested_obj)


class FlowItemSchema(ma.Schema):
    flag = ma.fields.String()
    flow_item = ma.fields.String()
    status = ma.fields.String(metadata={"description": "released | in_flight | off | retired"})
    stage = ma.fields.String()
    created_at = ma.fields.DateTime()
    released_at = ma.fields.DateTime(allow_none=True)
    flow_time_days = _day()
    age_days = _day()
    wait_for_readiness_days = _day()
    blocked_days = _day()
    active_days = _day()
    flow_efficiency = _day()
    off_days = _day()
    early_access_days = _day()
    general_days = _day()


class PeriodSchema(ma.Schema):
    since = ma.fields.DateTime()
    until = ma.fields.DateTime(allow_none=True)
    as_of = ma.fields.DateTime()


METRICS = tuple(FlowMetricsSchema().fields)
"""The metrics' names (the fields of ``flow.FlowMetrics``), flat in a report's JSON."""


class FlowReportSchema(FlowMetricsSchema):
    environment = ma.fields.String()
    objective_id = ma.fields.Integer(allow_none=True)
    period = ma.fields.Nested(PeriodSchema)
    items = JsonRows(ma.fields.Nested(FlowItemSchema))
    definitions = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


def flow_query(args: Mapping[str, Any]) -> flow.FlowQuery:
    """The service query from parsed query arguments."""
    return flow.FlowQuery(
        args["environment"],
        args.get("objective"),
        args.get("since"),
        args.get("until"),
        args.get("value_stream"),
    )


_TEXT_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/x-ndjson": {"schema": {"type": "string"}},
}


@blp.route("/flow")
class Flow(MethodView):
    @requires(Permission.READ)
    @blp.arguments(FlowArgsSchema, location="query")
    @blp.response(200, FlowReportSchema, description="JSON; format=csv or ndjson: per-flag rows")
    @blp.doc(responses={200: {"content": _TEXT_CONTENT}})  # int: merges into the response's
    def get(self, args: dict[str, Any]) -> Any:
        """Flow metrics: flow time, readiness wait, efficiency, load, velocity, bottleneck"""
        with db().read() as session:
            report = flow.flow_report(session, flow_query(args), state().clock())
        rows = [item_row(item) for item in report.items]
        if args["format"] != "json":
            return _export(rows, args["format"])
        return {
            **{name: getattr(report.metrics, name) for name in METRICS},
            "environment": report.environment,
            "objective_id": report.objective_id,
            "period": report.window,
            "items": rows,
            "definitions": DEFINITIONS,
        }


def _export(rows: list[dict[str, Any]], fmt: str) -> Response:
    body = "".join(_csv_lines(rows) if fmt == "csv" else _ndjson_lines(rows))
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="flow.{fmt}"'
    return response


def _ndjson_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps({f: row[f] for f in ITEM_FIELDS}, separators=(",", ":")) + "\n"


def _csv_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ITEM_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(safe_row({f: "" if row[f] is None else row[f] for f in ITEM_FIELDS}))
    yield buffer.getvalue()


# --- stale flags ----------------------------------------------------------------------


class StaleReasonSchema(ma.Schema):
    reason = ma.fields.String(metadata={"description": "released_everywhere | not_evaluated"})
    since = ma.fields.DateTime()
    days = ma.fields.Float()
    environment = ma.fields.String(allow_none=True)
    last_evaluated_at = ma.fields.DateTime(allow_none=True)


class StaleFlagSchema(ma.Schema):
    flag = ma.fields.String()
    name = ma.fields.String()
    flow_item = ma.fields.String()
    reasons = ma.fields.List(ma.fields.Nested(StaleReasonSchema))


class StaleFlagsSchema(ma.Schema):
    released_days = ma.fields.Integer()
    unevaluated_days = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(StaleFlagSchema))


@blp.route("/stale-flags")
class StaleFlags(MethodView):
    @requires(Permission.READ)
    @blp.arguments(StaleArgsSchema, location="query")
    @blp.response(200, StaleFlagsSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Flags ready for removal from code: released everywhere, or no longer evaluated"""
        with db().read() as session:
            items = stale.stale_flags(
                session, state().clock(), args["released_days"], args["unevaluated_days"]
            )
        return {**args, "items": items}
