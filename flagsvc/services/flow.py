"""Flow metrics (Flow Framework, Mik Kersten) per environment, objective and period.

Read from the audit through ``timeline.flow_events`` and folded per flag by
``flagsvc.domain.flow``; this module picks the flags in scope and aggregates. A flag
is *in scope* of a window when it was released in it (first entry into ``released``
at or after ``since``) or is in flight (early access or general) at its end.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.flow import FLOW_ITEMS
from flagsvc.domain.stages import Stage
from flagsvc.services import environments
from flagsvc.services import okrs
from flagsvc.services import timeline
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective
from flagsvc.storage.models import ValueStream

DEFAULT_PERIOD = timedelta(days=90)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""No period starts earlier: nothing was released before, and date arithmetic near year 1
(a default period, a week's Monday) leaves the calendar."""
MAX_PERIOD = timedelta(days=731)
"""Longest window one report covers (its weekly series stay a readable size)."""
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


@dataclass(frozen=True, slots=True)
class FlowQuery:
    """Filters of a flow report; a missing period means the last 90 days."""

    environment: str = "production"
    objective_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    value_stream: str | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """The period a report covers; ``as_of`` is its end, never later than now."""

    since: datetime
    until: datetime | None
    as_of: datetime


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of a duration in days."""

    count: int
    mean_days: float | None
    p50_days: float | None
    p85_days: float | None


@dataclass(frozen=True, slots=True)
class FlowReport:
    """Every flow metric of one environment and window, with the flags behind them."""

    environment: str
    objective_id: int | None
    window: Window
    items: list[flow.FlagFlow]
    metrics: dict[str, Any]
    definitions: dict[str, str]


def window(query: FlowQuery, now: datetime) -> Window:
    """The report period: ``since``/``until`` as given, else the 90 days up to now.

    :raise InvalidFieldError: the period is inverted, longer than two years or starts
        before ``EARLIEST`` (year 1 minus 90 days overflowed: a 500).
    """
    for name in ("since", "until"):
        bound = getattr(query, name)
        if bound is not None and bound < EARLIEST:
            raise InvalidFieldError(name, f"must be {EARLIEST:%Y-%m-%d} or later")
    until = query.until
    as_of = min(until, now) if until is not None else now
    since = query.since or max(as_of - DEFAULT_PERIOD, EARLIEST)
    if until is not None and until <= since:
        raise InvalidFieldError("until", "must be later than since")
    if since >= as_of:
        raise InvalidFieldError("since", "must be in the past")
    if (as_of - since) > MAX_PERIOD:
        raise InvalidFieldError("since", "the period may span at most 731 days")
    return Window(since, until, as_of)


def flow_report(session: Session, query: FlowQuery, now: datetime) -> FlowReport:
    """Flow metrics for ``query``.

    :raise NotFoundError: the environment or objective does not exist.
    :raise InvalidFieldError: the period is inverted or too long.
    """
    span = window(query, now)
    environment = environments.get_environment(session, query.environment)
    keys = select(Flag.key)
    if query.objective_id is not None:
        okrs.get_objective(session, query.objective_id)
        keys = objective_flag_keys(query.objective_id)
    if query.value_stream is not None:
        stream = value_stream_flag_keys(session, query.value_stream)
        keys = keys.where(Flag.key.in_(stream))
    candidates = timeline.active_flag_keys(environment.key, span.since, _event_bound(span))
    flows = load_flows(session, environment, keys.where(Flag.key.in_(candidates)), span)
    items = in_scope(flows, span)
    metrics = summarize(flows, span, items)
    return FlowReport(environment.key, query.objective_id, span, items, metrics, DEFINITIONS)


def objective_flag_keys(objective_id: int) -> Select[str]:
    """The keys of the objective's flags (through its key results)."""
    return (
        select(Flag.key)
        .join(KeyResult, KeyResult.id == Flag.key_result_id)
        .where(KeyResult.objective_id == objective_id)
    )


def value_stream_flag_keys(session: Session, key: str) -> Select[str]:
    """The keys of a value stream's flags (those serving its objectives' key results).

    :raise NotFoundError: there is no such value stream.
    """
    stream_id = session.scalar(select(ValueStream.id).where(ValueStream.key == key))
    if stream_id is None:
        raise NotFoundError("value stream", key)
    return (
        select(Flag.key)
        .join(KeyResult, KeyResult.id == Flag.key_result_id)
        .join(Objective, Objective.id == KeyResult.objective_id)
        .where(Objective.value_stream_id == stream_id)
    )


def load_flows(
    session: Session, environment: str | Environment, keys: Select[str], span: Window
) -> list[flow.FlagFlow]:
    """The flow in ``environment`` up to ``span.as_of`` of each flag ``keys`` selects.

    :raise NotFoundError: the environment (given by key) does not exist.
    """
    env = (
        environment
        if isinstance(environment, Environment)
        else environments.get_environment(session, environment)
    )
    histories = timeline.flow_events(session, env.key, keys, _event_bound(span))
    scope = flow.FlowScope(env.key, env.gated, span.as_of)
    flows = (
        flow.flag_flow(key, history.flow_item, history.events, scope)
        for key, history in histories.items()
    )
    return [item for item in flows if item is not None]


def _event_bound(span: Window) -> datetime | None:
    """Events before the window's end; a window ending now reads everything up to now."""
    return span.until if span.until is not None and span.until <= span.as_of else None


def in_scope(flows: Iterable[flow.FlagFlow], span: Window) -> list[flow.FlagFlow]:
    """Flags released in the window or in flight at its end, in creation order."""
    chosen = [
        item
        for item in flows
        if (item.released is not None and item.released >= span.since)
        or (item.released is None and item.stage_at(span.as_of) in flow.IN_FLIGHT)
    ]
    return sorted(chosen, key=lambda item: (item.created, item.flag_key))


def summarize(
    flows: Sequence[flow.FlagFlow],
    span: Window,
    scoped: Sequence[flow.FlagFlow] | None = None,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """Every metric of ``span`` over ``flows`` (any flags; scope is decided here, unless
    the caller already has ``in_scope(flows, span)`` and passes it as ``scoped``), or
    those ``only`` names (a measured key result reads one of them at each of its weeks).

    The weekly load counts every flag in flight at each week's end, also those that
    left the flow later without a release (rolled back to off, or retired).
    """
    items = in_scope(flows, span) if scoped is None else scoped
    released = [item for item in items if item.released is not None]
    in_flight = [item for item in items if item.released is None]
    medians = functools.cache(lambda: stage_medians(items))
    figures: dict[str, Callable[[], Any]] = {
        "flow_time": lambda: stats([flow.days(i.flow_time) for i in released]),
        "wait_for_readiness": lambda: stats([flow.days(i.readiness_wait) for i in released]),
        "waiting_for_readiness_now": lambda: sum(
            1 for i in in_flight if i.waiting_for_readiness_now
        ),
        "flow_efficiency": lambda: _portfolio_efficiency(released),
        "flow_load": lambda: {
            "now": len(in_flight),
            "weekly": _weekly_load(flows, iso_weeks(span), span),
        },
        "flow_velocity": lambda: _velocity(released, iso_weeks(span), span),
        "flow_distribution": lambda: {
            "released": _shares(released),
            "in_flight": _shares(in_flight),
        },
        "stage_median_days": medians,
        "bottleneck": lambda: bottleneck(medians()),
    }
    return {name: figure() for name, figure in figures.items() if only is None or name in only}


def stats(values: Sequence[float]) -> Stats:
    """Count, mean, p50 and p85 of day counts."""
    mean = round(sum(values) / len(values), 4) if values else None
    return Stats(len(values), mean, _rounded(flow.percentile(values, 0.5)), _rounded(
        flow.percentile(values, 0.85)
    ))  # fmt: skip


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _portfolio_efficiency(released: Sequence[flow.FlagFlow]) -> float | None:
    total = sum(item.flow_time for item in released)
    return None if total <= 0 else round(sum(item.active for item in released) / total, 4)


def iso_weeks(span: Window) -> list[tuple[str, datetime, datetime]]:
    """The ISO weeks the window touches: label, start (Monday 00:00) and end (exclusive)."""
    start = span.since.replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=start.weekday())
    weeks = []
    while start <= span.as_of:
        year, week, _ = start.isocalendar()
        weeks.append((f"{year}-W{week:02d}", start, start + timedelta(days=7)))
        start += timedelta(days=7)
    return weeks


def _weekly_load(
    flows: Sequence[flow.FlagFlow], weeks: Sequence[tuple[str, datetime, datetime]], span: Window
) -> list[dict[str, Any]]:
    """Flags in flight at the end of each week (at the window's end for the last one)."""
    moments = [min(end, span.as_of) for _, _, end in weeks]
    counts = [0] * len(moments)
    for item in flows:
        for period in item.periods:
            if period.stage in flow.IN_FLIGHT:
                first = bisect.bisect_left(moments, period.start)
                last = (
                    len(moments) if period.end is None else bisect.bisect_left(moments, period.end)
                )
                for n in range(first, last):
                    counts[n] += 1
    return [
        {"week": label, "at": at, "in_flight": count}
        for (label, _, _), at, count in zip(weeks, moments, counts, strict=True)
    ]


def _velocity(
    released: Sequence[flow.FlagFlow], weeks: Sequence[tuple[str, datetime, datetime]], span: Window
) -> dict[str, Any]:
    """Releases per ISO week (only those inside the window count)."""
    times = [item.released for item in released if item.released is not None]
    weekly = [
        {"week": label, "released": sum(1 for at in times if start <= at < end)}
        for label, start, end in weeks
    ]
    per_week = len(released) / max((span.as_of - span.since) / timedelta(days=7), 1.0)
    return {"total": len(released), "per_week": round(per_week, 4), "weekly": weekly}


def _shares(items: Sequence[flow.FlagFlow]) -> dict[str, dict[str, float]]:
    counts = {name: sum(1 for item in items if item.flow_item == name) for name in FLOW_ITEMS}
    total = len(items)
    return {
        name: {"count": count, "share": round(count / total, 4) if total else 0.0}
        for name, count in counts.items()
    }


def stage_medians(items: Sequence[flow.FlagFlow]) -> dict[str, float | None]:
    """Median days per flow stage over the flags that spent time in it."""
    return {
        stage: _rounded(
            flow.percentile([flow.days(i.dwell[stage]) for i in items if i.dwell[stage] > 0], 0.5)
        )
        for stage in flow.FLOW_STAGES
    }


def bottleneck(medians: dict[str, float | None]) -> dict[str, Any] | None:
    """The stage with the longest median dwell (None without data; ties: the earlier stage)."""
    known = [(days, stage) for stage, days in medians.items() if days is not None]
    if not known:
        return None
    days, stage = max(known, key=lambda pair: (pair[0], -flow.FLOW_STAGES.index(pair[1])))
    return {"stage": stage, "median_days": days}


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
