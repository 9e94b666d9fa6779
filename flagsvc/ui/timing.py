"""Release timing: timelines per flag and per objective, flow metrics with the bottleneck named.

Everything here is read from the audit by the timing services (``services.timeline``,
``services.flow``, ``services.stale``), the same ones behind ``/api/v1/flags/<key>/timeline``
and ``/api/v1/flow``, and drawn by ``charts`` as inline SVG with a data table beside each
chart. Nothing is a forecast: the page shows where releases waited, not when they will ship.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import request
from sqlalchemy.orm import Session

from flagsvc.domain import flow as flow_rules
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.stages import Stage
from flagsvc.services import environments
from flagsvc.services import flags
from flagsvc.services import flow
from flagsvc.services import okrs
from flagsvc.services import stale
from flagsvc.services import timeline
from flagsvc.ui import bp
from flagsvc.ui import charts
from flagsvc.ui.forms import FormInvalidError
from flagsvc.ui.forms import FormState
from flagsvc.ui.forms import plain
from flagsvc.ui.forms import utc_text
from flagsvc.ui.forms import validate
from flagsvc.ui.okrs import objective_options
from flagsvc.ui.pages import render
from flagsvc.web.context import db
from flagsvc.web.context import state
from flagsvc.web.shapes.timing import DEFINITIONS
from flagsvc.web.shapes.timing import FlowArgsSchema
from flagsvc.web.shapes.timing import item_row

FILTERS = ("environment", "objective", "since", "until")
STAGE_WORDS = {"off": "off (dark)", "early_access": "early access", "general": "general rollout"}
STALE_DAYS = 30
MIN_SAMPLE = 3  # flags in scope before a bottleneck is named
OBJECTIVE_FLAGS = 200  # flags one objective's timeline draws


def duration(seconds: float) -> str:
    """A span in words a person reads at a glance (``45 s``, ``3 h``, ``2.5 days``)."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


# --- one flag ------------------------------------------------------------------------


def flag_timeline(session: Session, flag_key: str) -> dict[str, Any]:
    """The flag page's timeline: a chart with one row per environment, and its table."""
    found = timeline.flag_timeline(session, flag_key)
    now = state().clock()
    rows = [_environment_row(env, now) for env in found.environments.values()]
    chart = charts.timeline_chart(
        f"Release timeline of {flag_key}",
        f"Stages of {flag_key} in each environment from its creation to now, read from the audit.",
        rows,
        found.created,
        now,
    )
    periods = [(env, p) for env, t in found.environments.items() for p in t.stages]
    return {"chart": chart, "periods": [_period_row(env, p, now) for env, p in periods]}


def _environment_row(env: flow_rules.EnvironmentTimeline, now: datetime) -> charts.TimelineRow:
    segments = [_segment(period, now) for period in env.stages]
    markers = [(m.at, f"{m.action.replace('_', ' ')} by {m.actor}") for m in env.kill_switch]
    markers += [(m.at, f"{m.action.replace('_', ' ')}") for m in env.launches]
    return charts.TimelineRow(env.environment, segments, markers)


def _segment(period: flow_rules.StagePeriod, now: datetime) -> charts.Segment:
    end = period.end or now
    words = _stage_words(period.stage, period.rollout_percent)
    tip = f"{words}: {duration((end - period.start).total_seconds())}"
    return charts.Segment(period.stage, period.start, end, tip)


def _stage_words(stage: str, percent: float) -> str:
    if stage == "general":
        return f"general rollout at {percent:g}%"
    return STAGE_WORDS.get(stage, stage)


def _period_row(env: str, period: flow_rules.StagePeriod, now: datetime) -> dict[str, Any]:
    end = period.end or now
    return {
        "environment": env,
        "stage": _stage_words(period.stage, period.rollout_percent),
        "start": period.start,
        "end": period.end,
        "lasted": duration((end - period.start).total_seconds()),
    }


def readiness_waits(session: Session, flag_keys: Sequence[str]) -> dict[str, str]:
    """How long each flag has been in early access in a gated environment, unready, in words."""
    gated = {env.key for env in environments.list_environments(session) if env.gated}
    now, waits = state().clock(), {}
    for key in flag_keys:
        found = timeline.flag_timeline(session, key)
        starts = [
            t.stages[-1].start
            for env, t in found.environments.items()
            if env in gated and t.stages[-1].stage == Stage.EARLY_ACCESS
        ]
        if starts and not found.ready_now:
            waits[key] = duration((now - min(starts)).total_seconds())
    return waits


# --- flow metrics (and an objective's timeline) -------------------------------------


@bp.get("/timing", endpoint="flow")
def flow_page() -> Any:
    """Flow metrics for an environment, optionally one objective, over a period."""
    raw = {k: request.args[k].strip() for k in FILTERS if request.args.get(k, "").strip()}
    with db().read() as session:
        context = _choices(session)
        try:
            report = flow.flow_report(session, _flow_query(raw), state().clock())
        except FormInvalidError as error:
            return _refused(context, raw, error.errors)
        except (InvalidFieldError, NotFoundError) as error:
            field = getattr(error, "field", None) or _field_of(error)
            return _refused(context, raw, {field: [plain(getattr(error, "reason", error.message))]})
        context |= _report_context(session, report)
        return render("timing/flow.html", **context, form=FormState("flow", raw))


def _flow_query(raw: Mapping[str, str]) -> flow.FlowQuery:
    """The filters checked by the API's own ``FlowArgsSchema`` (times typed are UTC)."""
    sent = {k: utc_text(v) if k in ("since", "until") else v for k, v in raw.items()}
    args = validate(FlowArgsSchema(), sent, {})
    return flow.FlowQuery(args["environment"], args.get("objective"), args.get("since"),
                          args.get("until"))  # fmt: skip


def _field_of(error: Exception) -> str:
    entity = getattr(error, "entity", "")
    return "objective" if entity == "objective" else "environment"


def _refused(context: dict[str, Any], raw: Mapping[str, str], errors: dict[str, list[str]]) -> Any:
    form = FormState("flow", raw, errors)
    return render("timing/flow.html", 422, **context, form=form, report=None)


def _choices(session: Session) -> dict[str, Any]:
    objectives = okrs.list_objectives(session, period=None, after=0, limit=500)
    return {
        "section": "ui.flow",
        "environment_options": [(e.key, e.name) for e in environments.list_environments(session)],
        "objective_options": objective_options(objectives),
        "objectives": {o.id: o for o in objectives},
    }


def _report_context(session: Session, report: flow.FlowReport) -> dict[str, Any]:
    metrics = report.metrics
    return {
        "report": report,
        "metrics": metrics,
        "rows": [item_row(item) for item in report.items],
        "definitions": DEFINITIONS,
        "bottleneck": named_bottleneck(metrics, len(report.items)),
        "min_sample": MIN_SAMPLE,
        "in_scope": len(report.items),
        "stage_words": STAGE_WORDS,
        "charts": _flow_charts(report),
        "objective_timeline": _objective_timeline(session, report),
        "stale": stale.stale_flags(session, state().clock(), STALE_DAYS, STALE_DAYS),
        "stale_days": STALE_DAYS,
    }


def _flow_charts(report: flow.FlowReport) -> dict[str, Any]:
    metrics, where = report.metrics, f"in {report.environment}"
    return {
        "bottleneck": _bottleneck_chart(metrics, where, len(report.items)),
        "time": _time_chart(report, where),
        "load": _weekly_chart(
            [(w.week, w.in_flight) for w in metrics.flow_load.weekly], "Flow load", where
        ),
        "velocity": _weekly_chart(
            [(w.week, w.released) for w in metrics.flow_velocity.weekly], "Flow velocity", where
        ),
        "distribution": _distribution_chart(metrics.flow_distribution, where),
    }


def named_bottleneck(metrics: flow.FlowMetrics, in_scope: int) -> flow.Bottleneck | None:
    """The bottleneck worth naming: none below ``MIN_SAMPLE`` flags in scope, nor when
    every median is under a tenth of a day (one flag clicked through in minutes is
    not a finding)."""
    worst = metrics.bottleneck
    if worst is None or in_scope < MIN_SAMPLE or (worst.median_days or 0) < 0.1:
        return None
    return worst


def _bottleneck_chart(metrics: flow.FlowMetrics, where: str, in_scope: int) -> Any:
    medians, worst = metrics.stage_median_days, named_bottleneck(metrics, in_scope)
    bars = [
        charts.Bar(STAGE_WORDS[stage], _rounded(days), bool(worst and worst.stage == stage))
        for stage, days in medians.items()
    ]
    named = STAGE_WORDS[worst.stage] if worst else f"not named (fewer than {MIN_SAMPLE} flags)"
    desc = f"Median days per flag spent in each stage {where}; the longest is {named}."
    return charts.bar_chart("Median dwell per stage", desc, bars, "days")


def _time_chart(report: flow.FlowReport, where: str) -> Any:
    bars = [
        charts.StackedBar(item.flag_key, [
            ("active", _rounded(flow_rules.days(item.active))),
            ("readiness wait", _rounded(flow_rules.days(item.readiness_wait))),
            ("blocked", _rounded(flow_rules.days(item.blocked))),
        ])
        for item in sorted(report.items, key=lambda i: (-i.flow_time, i.flag_key))
    ]  # fmt: skip
    desc = (
        f"Flow time of each flag in scope {where}, split into active time, waiting for "
        "launch readiness and blocked by the kill switch."
    )
    return charts.stacked_chart("Where each flag's time went", desc, bars, "days")


def _rounded(days: float | None) -> float:
    """Days to show on a chart: one decimal (two significant digits below one day)."""
    if not days:
        return 0.0
    return round(days, 1) if days >= 1 else float(f"{days:.2g}")


def _weekly_chart(series: Sequence[tuple[str, int]], title: str, where: str) -> Any:
    columns = [charts.Bar(week.split("-")[-1], float(count)) for week, count in series]
    desc = f"{title} per ISO week {where}: " + ", ".join(
        f"{week} {count}" for week, count in series
    )
    return charts.column_chart(title, desc, columns, "flags")


def _distribution_chart(shares: flow.Distribution, where: str) -> Any:
    groups = (("released", shares.released), ("in flight", shares.in_flight))
    bars = [
        charts.Bar(f"{item} ({group})", round(100 * share.share, 1),
                   colour=charts.ITEM_COLOURS.get(item))
        for group, kinds in groups
        for item, share in sorted(kinds.items(), key=lambda pair: -pair[1].share)
    ]  # fmt: skip
    desc = f"Share of each kind of work among flags released in the period and in flight {where}."
    return charts.bar_chart("Flow distribution", desc, bars, "%")


def _objective_timeline(session: Session, report: flow.FlowReport) -> dict[str, Any] | None:
    """Every flag of the report's objective as a row of stage bars in its environment."""
    if report.objective_id is None:
        return None
    env, now = report.environment, state().clock()
    query = flags.FlagQuery(objective_id=report.objective_id)
    keys = [d.flag.key for d in flags.list_flags(session, query, OBJECTIVE_FLAGS)]
    found = [t for key in keys if env in (t := timeline.flag_timeline(session, key)).environments]
    if not found:
        return None
    rows = [_flag_row(t, env, now) for t in found]
    desc = f"Stages of each flag of the objective in {env}, from creation to now."
    chart = charts.timeline_chart(
        "Objective timeline", desc, rows, min(t.created for t in found), now
    )
    periods = [
        _period_row(t.flag, period, now) for t in found for period in t.environments[env].stages
    ]
    return {"chart": chart, "periods": periods}


def _flag_row(found: timeline.FlagTimeline, environment: str, now: datetime) -> charts.TimelineRow:
    row = _environment_row(found.environments[environment], now)
    return charts.TimelineRow(found.flag, row.segments, row.markers)
