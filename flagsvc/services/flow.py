"""Flow metrics (Flow Framework, Mik Kersten) per environment, objective and period.

Read from the audit through ``timeline.flow_events`` and folded per flag by
``flagsvc.domain.flow``; this module picks the flags in scope and aggregates. A flag
is *in scope* of a window when it was released in it (first entry into ``released``
at or after ``since``) or is in flight (early access or general) at its end.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import Select
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.flow import FLOW_ITEMS
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
class WeekLoad:
    """Flags in flight at the end of an ISO week (or of the window, for its last week)."""

    week: str
    at: datetime
    in_flight: int


@dataclass(frozen=True, slots=True)
class FlowLoad:
    """Flags in flight at the window's end, and at each week's end."""

    now: int
    weekly: list[WeekLoad]


@dataclass(frozen=True, slots=True)
class WeekVelocity:
    """Flags released in an ISO week (inside the window)."""

    week: str
    released: int


@dataclass(frozen=True, slots=True)
class Velocity:
    """Releases in the window: in all, per week on average, and week by week."""

    total: int
    per_week: float
    weekly: list[WeekVelocity]


@dataclass(frozen=True, slots=True)
class Share:
    """How many flags of one kind of work, and their share of the group."""

    count: int
    share: float


@dataclass(frozen=True, slots=True)
class Distribution:
    """Kinds of work (``FLOW_ITEMS``) among flags released in the window and in flight."""

    released: dict[str, Share]
    in_flight: dict[str, Share]


@dataclass(frozen=True, slots=True)
class Bottleneck:
    """The stage with the longest median dwell."""

    stage: str
    median_days: float


@dataclass(frozen=True, slots=True)
class FlowMetrics:
    """Every flow metric of a window over a set of flags."""

    flow_time: Stats
    wait_for_readiness: Stats
    waiting_for_readiness_now: int
    flow_efficiency: float | None
    flow_load: FlowLoad
    flow_velocity: Velocity
    flow_distribution: Distribution
    stage_median_days: dict[str, float | None]
    bottleneck: Bottleneck | None


@dataclass(frozen=True, slots=True)
class FlowReport:
    """Every flow metric of one environment and window, with the flags behind them."""

    environment: str
    objective_id: int | None
    window: Window
    items: list[flow.FlagFlow]
    metrics: FlowMetrics


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
    candidates = timeline.active_flag_keys(environment.key, span.since, event_bound(span))
    flows = load_flows(session, environment, keys.where(Flag.key.in_(candidates)), span)
    items = in_scope(flows, span)
    return FlowReport(
        environment.key, query.objective_id, span, items, summarize(flows, span, items)
    )


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
    histories = timeline.flow_events(session, env.key, keys, event_bound(span))
    scope = flow.FlowScope(env.key, env.gated, span.as_of)
    flows = (
        flow.flag_flow(key, history.flow_item, history.events, scope)
        for key, history in histories.items()
    )
    return [item for item in flows if item is not None]


def event_bound(span: Window) -> datetime | None:
    """Events before the window's end; a window ending now reads everything up to now
    (the bound the candidate query and the event read take)."""
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
    flows: Sequence[flow.FlagFlow], span: Window, scoped: Sequence[flow.FlagFlow] | None = None
) -> FlowMetrics:
    """Every metric of ``span`` over ``flows`` (any flags; scope is decided here, unless
    the caller already has ``in_scope(flows, span)`` and passes it as ``scoped``).

    The weekly load counts every flag in flight at each week's end, also those that
    left the flow later without a release (rolled back to off, or retired).
    """
    items = in_scope(flows, span) if scoped is None else scoped
    released = [item for item in items if item.released is not None]
    in_flight = [item for item in items if item.released is None]
    weeks = iso_weeks(span)
    medians = stage_medians(items)
    return FlowMetrics(
        flow_time=flow_time(released),
        wait_for_readiness=readiness_wait(released),
        waiting_for_readiness_now=sum(1 for i in in_flight if i.waiting_for_readiness_now),
        flow_efficiency=efficiency(released),
        flow_load=FlowLoad(len(in_flight), _weekly_load(flows, weeks, span)),
        flow_velocity=Velocity(len(released), per_week(released, span), _weekly(released, weeks)),
        flow_distribution=Distribution(shares(released), shares(in_flight)),
        stage_median_days=medians,
        bottleneck=bottleneck(medians),
    )


def flow_time(released: Sequence[flow.FlagFlow]) -> Stats:
    """Days from creation to release of ``released`` (flags released in the window)."""
    return stats([flow.days(item.flow_time) for item in released])


def readiness_wait(released: Sequence[flow.FlagFlow]) -> Stats:
    """Days ``released`` waited for launch readiness."""
    return stats([flow.days(item.readiness_wait) for item in released])


def stats(values: Sequence[float]) -> Stats:
    """Count, mean, p50 and p85 of day counts."""
    mean = round(sum(values) / len(values), 4) if values else None
    return Stats(len(values), mean, _rounded(flow.percentile(values, 0.5)), _rounded(
        flow.percentile(values, 0.85)
    ))  # fmt: skip


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def efficiency(released: Sequence[flow.FlagFlow]) -> float | None:
    """Active days over flow days, summed over ``released`` (None: no flow time)."""
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
) -> list[WeekLoad]:
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
        WeekLoad(label, at, count)
        for (label, _, _), at, count in zip(weeks, moments, counts, strict=True)
    ]


def _weekly(
    released: Sequence[flow.FlagFlow], weeks: Sequence[tuple[str, datetime, datetime]]
) -> list[WeekVelocity]:
    """Releases per ISO week (only those inside the window count)."""
    times = [item.released for item in released if item.released is not None]
    return [
        WeekVelocity(label, sum(1 for at in times if start <= at < end))
        for label, start, end in weeks
    ]


def per_week(released: Sequence[flow.FlagFlow], span: Window) -> float:
    """Releases per week of the window (a window under a week counts as one)."""
    return round(len(released) / max((span.as_of - span.since) / timedelta(days=7), 1.0), 4)


def shares(items: Sequence[flow.FlagFlow]) -> dict[str, Share]:
    """How many of ``items`` are of each kind of work, and their share."""
    counts = {name: sum(1 for item in items if item.flow_item == name) for name in FLOW_ITEMS}
    total = len(items)
    return {
        name: Share(count, round(count / total, 4) if total else 0.0)
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


def bottleneck(medians: dict[str, float | None]) -> Bottleneck | None:
    """The stage with the longest median dwell (None without data; ties: the earlier stage)."""
    known = [(days, stage) for stage, days in medians.items() if days is not None]
    if not known:
        return None
    days, stage = max(known, key=lambda pair: (pair[0], -flow.FLOW_STAGES.index(pair[1])))
    return Bottleneck(stage, days)
