"""Measured key results: current value and weekly history computed from the audit.

One read of the flow events per environment (of the flags any of the scopes there
covers: objective, value stream or all) serves every measured key result measured in
it and every point of their history:
the flows are folded again at each point (``flagsvc.domain.flow`` is pure), so the
history at week *w* is exactly what the report of the window ending at *w* said.

The history has one point at the end of each of the last ``weeks`` ISO weeks (Monday
00:00 UTC) and one at ``now`` (the current value), each over the key result's rolling
window ending there.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow as flow_rules
from flagsvc.domain import measures
from flagsvc.domain.actions import Action
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.measures import FlowMeasure
from flagsvc.domain.stages import Stage
from flagsvc.services import environments
from flagsvc.services import flow
from flagsvc.services import timeline
from flagsvc.storage.models import Flag
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective
from flagsvc.storage.models import ValueStream

WEEKS = 12
"""Weekly points a history shows before the current value."""
MAX_WEEKS = 52


@dataclass(frozen=True, slots=True)
class Point:
    """The measured value at the end of an ISO week (or now, for the last point)."""

    week: str
    at: datetime
    value: float | None


@dataclass(frozen=True, slots=True)
class Measurement:
    """A measured key result's value now and its weekly history, read from the audit."""

    spec: measures.MeasureSpec
    direction: measures.Direction
    current: float | None
    as_of: datetime
    history: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class KeyResultView:
    """A key result as readers see it: measured ones carry the computed value."""

    row: KeyResult
    measurement: Measurement | None

    @property
    def current(self) -> float | None:
        """The measured value (None: no data in the window), else the typed-in one."""
        return self.row.current if self.measurement is None else self.measurement.current

    @property
    def progress(self) -> float | None:
        """Share of the way from baseline to target."""
        return measures.progress(self.row.baseline, self.row.target, self.current)

    @property
    def history(self) -> tuple[Point, ...] | None:
        """Measured: the weekly points, then now (None: typed in)."""
        return None if self.measurement is None else self.measurement.history

    @property
    def as_of(self) -> datetime | None:
        """Measured: when the value was computed (None: typed in)."""
        return None if self.measurement is None else self.measurement.as_of

    @property
    def direction(self) -> str:
        """lower_is_better or higher_is_better."""
        if self.measurement is not None:
            return self.measurement.direction.value
        lower = self.row.target < self.row.baseline
        return (
            measures.Direction.LOWER_IS_BETTER if lower else measures.Direction.HIGHER_IS_BETTER
        ).value


@dataclass(frozen=True, slots=True)
class ObjectiveView:
    """An objective with its key results as readers see them."""

    objective: Objective
    key_results: list[KeyResultView]
    value_stream: str | None = None  # its key, read while the session is open


def spec_of(key_result: KeyResult) -> measures.MeasureSpec | None:
    """The key result's measure (None: typed in)."""
    return (
        None if key_result.measure is None else measures.MeasureSpec.from_json(key_result.measure)
    )


def check_spec(
    session: Session, spec: measures.MeasureSpec, baseline: float, target: float
) -> None:
    """Refuse a measure that names what does not exist, or aims the wrong way.

    :raise InvalidFieldError: naming the field under ``measure``.
    """
    measures.check(spec, baseline, target)
    try:
        environments.get_environment(session, spec.environment)
    except NotFoundError as error:
        raise InvalidFieldError("measure.environment", "no such environment") from error
    if spec.objective_id is not None and session.get(Objective, spec.objective_id) is None:
        raise InvalidFieldError("measure.objective_id", "no such objective")
    if spec.value_stream is not None:
        try:
            flow.value_stream_flag_keys(session, spec.value_stream)
        except NotFoundError as error:
            raise InvalidFieldError("measure.value_stream", "no such value stream") from error


def views(
    session: Session, key_results: Iterable[KeyResult], now: datetime, weeks: int = WEEKS
) -> list[KeyResultView]:
    """Views of ``key_results``, measured ones computed (one audit read per scope)."""
    rows = list(key_results)
    found = measure_all(session, rows, now, weeks)
    return [KeyResultView(row, found.get(row.id)) for row in rows]


def objective_views(
    session: Session, objectives: Sequence[Objective], now: datetime, weeks: int = WEEKS
) -> list[ObjectiveView]:
    """Objectives with their key results measured (their streams' keys read at once)."""
    found = measure_all(
        session, [kr for objective in objectives for kr in objective.key_results], now, weeks
    )
    ids = {o.value_stream_id for o in objectives if o.value_stream_id is not None}
    stream_keys = {
        stream_id: key
        for stream_id, key in session.execute(
            select(ValueStream.id, ValueStream.key).where(ValueStream.id.in_(ids))
        )
    }
    return [
        ObjectiveView(
            o,
            [KeyResultView(kr, found.get(kr.id)) for kr in o.key_results],
            None if o.value_stream_id is None else stream_keys.get(o.value_stream_id),
        )
        for o in objectives
    ]


Scope = tuple[str, int | None, str | None]


def measure_all(
    session: Session, key_results: Sequence[KeyResult], now: datetime, weeks: int = WEEKS
) -> dict[int, Measurement]:
    """Per measured key result id: its value now and its history."""
    by_scope: dict[Scope, list[tuple[KeyResult, measures.MeasureSpec]]] = {}
    for row in key_results:
        spec = spec_of(row)
        if spec is not None:
            scope = (spec.environment, spec.objective_id, spec.value_stream)
            by_scope.setdefault(scope, []).append((row, spec))
    moments = points(now, weeks)
    found: dict[int, Measurement] = {}
    covered = _scope_key_sets(session, list(by_scope))
    histories: dict[str, _EnvironmentHistories] = {}
    for environment in {scope[0] for scope in by_scope}:
        here = [scope for scope in by_scope if scope[0] == environment]
        windows = {timedelta(days=spec.window_days) for s in here for _, spec in by_scope[s]}
        histories[environment] = _EnvironmentHistories(
            session,
            environment,
            _union(here),
            [at for _, at in moments],
            windows,
        )
    for scope, members in by_scope.items():
        folded = histories[scope[0]].scope(covered[scope])
        for row, spec in members:
            window = timedelta(days=spec.window_days)
            history = tuple(
                Point(label, at, _value(spec, folded.at(n, at - window), at))
                for n, (label, at) in enumerate(moments)
            )
            direction = measures.direction(spec, row.baseline, row.target)
            found[row.id] = Measurement(spec, direction, history[-1].value, now, history)
    return found


def points(now: datetime, weeks: int) -> list[tuple[str, datetime]]:
    """The ends of the last ``weeks`` ISO weeks (Monday 00:00), then ``now``, labelled."""
    monday = now.replace(hour=0, minute=0, second=0, microsecond=0)
    monday -= timedelta(days=monday.weekday())
    ends = [monday - timedelta(days=7 * n) for n in range(weeks - 1, -1, -1)]
    ends = [end for end in ends if end < now]
    labelled = [(_week_label(end - timedelta(days=1)), end) for end in ends]
    return [*labelled, (_week_label(now), now)]


def _week_label(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def _value(
    spec: measures.MeasureSpec, flows: list[flow_rules.FlagFlow], at: datetime
) -> float | None:
    """The spec's figure over the window ending at ``at`` (None: no data), as the flow
    report of that window says it; only that figure is computed."""
    span = flow.Window(at - timedelta(days=spec.window_days), at, at)
    items = flow.in_scope(flows, span)
    released = [item for item in items if item.released is not None]
    metric = spec.metric
    if metric is FlowMeasure.FLOW_TIME_P50:
        return flow.flow_time(released).p50_days
    if metric is FlowMeasure.FLOW_TIME_P85:
        return flow.flow_time(released).p85_days
    if metric is FlowMeasure.WAIT_FOR_READINESS_P50:
        return flow.readiness_wait(released).p50_days
    if metric is FlowMeasure.FLOW_LOAD:
        return float(len(items) - len(released))
    if metric is FlowMeasure.FLOW_VELOCITY:
        return flow.per_week(released, span)
    if metric is FlowMeasure.FLOW_EFFICIENCY:
        return flow.efficiency(released)
    kinds = flow.shares(released)
    if not sum(kind.count for kind in kinds.values()):
        return None
    return kinds[spec.flow_item or ""].share


@dataclass(frozen=True, slots=True)
class _History:
    """A flag's flow events in one environment, with what the per-moment choice reads."""

    key: str
    flow_item: str
    events: list[flow_rules.FlowEvent]
    times: list[datetime]  # the events' times, for bisecting
    changes: list[tuple[int, datetime, str]]  # its stage changes here: (index, at, stage)

    def counts(self, since: datetime, prefix: int) -> bool:
        """Whether the flag can count for a window from ``since``, over its first
        ``prefix`` events: it changed stage at or after ``since``, or its last change
        before ``since`` left it in flight (``timeline.active_flag_keys``' rule, applied
        to the events already read). Any other flag adds nothing to that window: it is
        not in scope and in flight at none of its week ends."""
        last: str | None = None
        for index, at, stage in self.changes:
            if index >= prefix:
                break
            if at >= since:
                return True
            last = stage
        return last in flow_rules.IN_FLIGHT


def _history(key: str, item: str, events: list[flow_rules.FlowEvent], env: str) -> _History:
    changes = [
        (n, event.at, event.stage or Stage.OFF)
        for n, event in enumerate(events)
        if event.action == Action.FLAG_STAGE_CHANGED and event.environment == env
    ]
    return _History(key, item, events, [event.at for event in events], changes)


class _EnvironmentHistories:
    """The flow events of the flags that can count for a window (one of ``windows``)
    ending at one of ``moments`` in one environment, read in one query and shared by
    every scope measured there: an objectives page measuring one key result per value
    stream reads the audit once, not per stream. Each flag's flows at the moments are
    folded in one pass, once, however many scopes ask for them."""

    def __init__(
        self,
        session: Session,
        environment: str,
        keys: Select[Any],
        moments: Sequence[datetime],
        windows: Iterable[timedelta],
    ) -> None:
        env = environments.get_environment(session, environment)
        self.moments, self.windows = moments, sorted(set(windows))
        since = moments[0] - self.windows[-1]
        candidates = timeline.active_flag_keys(env.key, since, None)
        histories = timeline.flow_events(
            session, env.key, keys.where(Flag.key.in_(candidates)), None
        )
        self.scope_at = flow_rules.FlowScope(env.key, env.gated, moments[-1])
        self.histories = [
            _history(key, history.flow_item, history.events, env.key)
            for key, history in histories.items()
        ]
        self.folds: dict[str, dict[int, flow_rules.FlagFlow | None]] = {}

    def scope(self, keys: frozenset[str] | None) -> _ScopeFlows:
        """The histories of the flags ``keys`` names (None: every flag)."""
        if keys is None:
            return _ScopeFlows(self, self.histories)
        return _ScopeFlows(self, [history for history in self.histories if history.key in keys])

    def flows(self, history: _History) -> dict[int, flow_rules.FlagFlow | None]:
        """The flag's flow at each moment (by number) where it counts for one of the
        windows measured here (None: it did not exist yet)."""
        found = self.folds.get(history.key)
        if found is None:
            points = [
                n
                for n, moment in enumerate(self.moments)
                if any(
                    history.counts(moment - window, bisect.bisect_right(history.times, moment))
                    for window in self.windows
                )
            ]
            flows = flow_rules.flag_flows(
                history.key,
                history.flow_item,
                history.events,
                self.scope_at,
                [self.moments[n] for n in points],
            )
            found = self.folds[history.key] = dict(zip(points, flows, strict=True))
        return found


def _scope_key_sets(
    session: Session, scopes: Sequence[Scope]
) -> dict[Scope, frozenset[str] | None]:
    """Per scope, the keys of the flags it covers (None: every flag, no need to list
    them); every value stream's in one query."""
    streams = sorted({stream for _, objective, stream in scopes if objective is None and stream})
    by_stream = _stream_flag_keys(session, streams)
    covered: dict[Scope, frozenset[str] | None] = {}
    for scope in scopes:
        _, objective_id, stream = scope
        if objective_id is not None:
            covered[scope] = frozenset(session.scalars(flow.objective_flag_keys(objective_id)))
        else:
            covered[scope] = None if stream is None else by_stream[stream]
    return covered


def _stream_flag_keys(session: Session, streams: Sequence[str]) -> dict[str, frozenset[str]]:
    """The keys of each value stream's flags.

    :raise NotFoundError: a stream does not exist.
    """
    if not streams:
        return {}
    known = set(session.scalars(select(ValueStream.key).where(ValueStream.key.in_(streams))))
    for key in streams:
        if key not in known:
            raise NotFoundError("value stream", key)
    rows = session.execute(
        select(ValueStream.key, Flag.key)
        .join(Objective, Objective.value_stream_id == ValueStream.id)
        .join(KeyResult, KeyResult.objective_id == Objective.id)
        .join(Flag, Flag.key_result_id == KeyResult.id)
        .where(ValueStream.key.in_(streams))
    )
    found: dict[str, set[str]] = {key: set() for key in streams}
    for stream, flag in rows:
        found[stream].add(flag)
    return {key: frozenset(flags) for key, flags in found.items()}


def _union(scopes: Sequence[Scope]) -> Select[Any]:
    """The flags any of ``scopes`` covers, as a select for the audit read: by objective
    and stream, not as thousands of keys (each a parameter the driver parses)."""
    if any(objective is None and stream is None for _, objective, stream in scopes):
        return select(Flag.key)
    objectives = sorted({objective for _, objective, _ in scopes if objective is not None})
    streams = sorted({stream for _, objective, stream in scopes if objective is None and stream})
    stream_ids = select(ValueStream.id).where(ValueStream.key.in_(streams))
    return (
        select(Flag.key)
        .join(KeyResult, KeyResult.id == Flag.key_result_id)
        .join(Objective, Objective.id == KeyResult.objective_id)
        .where(
            or_(
                KeyResult.objective_id.in_(objectives),
                Objective.value_stream_id.in_(stream_ids),
            )
        )
    )


class _ScopeFlows:
    """The flows of one scope's flags, at any of the moments."""

    def __init__(self, shared: _EnvironmentHistories, histories: list[_History]) -> None:
        self.shared, self.histories = shared, histories

    def at(self, point: int, since: datetime) -> list[flow_rules.FlagFlow]:
        """The flows at moment number ``point`` (later events ignored) of the flags that
        can count for the window from ``since``; leaving the others out changes no
        figure of it."""
        moment = self.shared.moments[point]
        flows = []
        for history in self.histories:
            prefix = bisect.bisect_right(history.times, moment)
            if history.counts(since, prefix):
                found = self.shared.flows(history)[point]
                if found is not None:
                    flows.append(found)
        return flows


def history_json(measurement: Measurement) -> list[Mapping[str, Any]]:
    """The history as JSON rows (API and UI tables)."""
    return [{"week": p.week, "at": p.at.isoformat(), "value": p.value} for p in measurement.history]
