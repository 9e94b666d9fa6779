"""The timing shapes both HTTP faces use: the API validates with them, the UI's forms too;
and what a flow report shows besides its figures: the metrics' definitions and each
flag's row (JSON items, CSV and NDJSON exports, the UI's table)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from flagsvc.domain import flow
from flagsvc.domain.stages import Stage
from flagsvc.web.schemas import StrictSchema
from flagsvc.web.schemas import key_field


class PeriodArgsSchema(StrictSchema):
    """A report's period; its rules (in order, in the past, at most two years) need the
    clock, so ``services.flow.window`` checks them, once, and names the field."""

    environment = key_field(load_default="production")
    since = ma.fields.AwareDateTime(
        default_timezone=None,
        metadata={"description": "ISO 8601 with offset; default: 90 days ago"},
    )
    until = ma.fields.AwareDateTime(
        default_timezone=None, metadata={"description": "ISO 8601 with offset; default: now"}
    )


class FlowArgsSchema(PeriodArgsSchema):
    objective = ma.fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))
    value_stream = key_field(metadata={"description": "Only this value stream's flags"})
    format = ma.fields.String(
        load_default="json", validate=validate.OneOf(["json", "csv", "ndjson"])
    )


class StaleArgsSchema(StrictSchema):
    released_days = ma.fields.Integer(
        strict=False, load_default=30, validate=validate.Range(min=0, max=3650)
    )
    unevaluated_days = ma.fields.Integer(
        strict=False, load_default=30, validate=validate.Range(min=0, max=3650)
    )


DEFINITIONS = {
    "flow_time": "Days from the flag's creation (flag.created) to its first entry into "
    "the released stage in the environment. Per item for flags released in the window; "
    "summarised as mean, p50 and p85 (linear interpolation between closest ranks).",
    "wait_for_readiness": "Days a flag sat in early_access in a gated environment while its "
    "readiness checklist was incomplete (between flag.readiness_lost / creation and "
    "flag.ready): finished work held for launch readiness. Ungated environments never hold "
    "for readiness, so it is 0 there.",
    "blocked": "Days the kill switch was on (flag.killed → flag.resumed) outside readiness "
    "waits: the flag served nobody while a fix was awaited.",
    "active": "Flow time minus wait for readiness minus blocked time: building it dark "
    "(off), early access once ready, and ramping general rollout.",
    "flow_efficiency": "Active time / flow time. The portfolio figure is the sum of active "
    "days over the sum of flow days of the flags released in the window.",
    "flow_load": "Flags in flight (stage early_access or general in the environment, "
    "killed or not) at the end of the window and at the end of each ISO week in it.",
    "flow_velocity": "Flags released (first entry into released) per ISO week in the window.",
    "flow_distribution": "Share of each flow_item (feature, defect, risk, debt) among the "
    "flags released in the window and among those in flight at its end.",
    "bottleneck": "The stage (off, early_access, general) with the longest median dwell: "
    "total days spent in it per flag, over flags in scope (released in the window or in "
    "flight at its end; time counted up to release or to the end of the window).",
}

ITEM_FIELDS = (
    "flag", "flow_item", "status", "stage", "created_at", "released_at", "flow_time_days",
    "age_days", "wait_for_readiness_days", "blocked_days", "active_days", "flow_efficiency",
    "off_days", "early_access_days", "general_days",
)  # fmt: skip
"""The columns of a flag's row, in export order."""


def _status(item: flow.FlagFlow, stage: str) -> str:
    """released, in_flight, or the stage of a flag outside the flow (off, retired)."""
    if item.released is not None:
        return "released"
    return "in_flight" if stage in flow.IN_FLIGHT else stage


def item_row(item: flow.FlagFlow) -> dict[str, Any]:
    """One flag's figures as a flat row of JSON values (the JSON items and the exports).

    Already JSON (times as ISO 8601 strings), so a report of thousands of flags is
    sent without a per-field serialisation pass.
    """
    stage = item.stage_at(item.as_of) or Stage.OFF
    age = flow.days(item.flow_time)
    return {
        "flag": item.flag_key,
        "flow_item": item.flow_item,
        "status": _status(item, stage),
        "stage": stage,
        "created_at": item.created.isoformat(),
        "released_at": None if item.released is None else item.released.isoformat(),
        "flow_time_days": None if item.released is None else age,
        "age_days": age,
        "wait_for_readiness_days": flow.days(item.readiness_wait),
        "blocked_days": flow.days(item.blocked),
        "active_days": flow.days(item.active),
        "flow_efficiency": _rounded(item.efficiency),
        **{f"{name}_days": flow.days(item.dwell[name]) for name in flow.FLOW_STAGES},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
