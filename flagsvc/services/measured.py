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
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow as flow_rules
from flagsvc.domain import measures
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.services import environments
from flagsvc.services import flow
from flagsvc.services import timeline
from flagsvc.storage.models import Flag
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective

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
    """Objectives with their key results measured."""
    found = measure_all(
        session, [kr for objective in objectives for kr in objective.key_results], now, weeks
    )
    return [
        ObjectiveView(
            o,
            [KeyResultView(kr, found.get(kr.id)) for kr in o.key_results],
            o.value_stream.key if o.value_stream is not None else None,
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
    covered = {scope: _scope_key_set(session, scope) for scope in by_scope}
    histories: dict[str, _EnvironmentHistories] = {}
    for environment in {scope[0] for scope in by_scope}:
        here = [scope for scope in by_scope if scope[0] == environment]
        longest = max(timedelta(days=spec.window_days) for s in here for _, spec in by_scope[s])
        histories[environment] = _EnvironmentHistories(
            session, environment, moments[0][1] - longest, _union([covered[s] for s in here])
        )
    for scope, members in by_scope.items():
        folded = histories[scope[0]].scope(covered[scope])
        for row, spec in members:
            history = tuple(
                Point(label, at, _value(spec, folded.at(at), at)) for label, at in moments
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
    span = flow.Window(at - timedelta(days=spec.window_days), at, at)
    return measures.pick(spec, flow.summarize(flows, span))


History = tuple[str, str, list[flow_rules.FlowEvent], list[datetime]]
"""A flag's key, flow item, flow events and their times (for bisecting)."""


class _EnvironmentHistories:
    """The flow events of every flag that can be in flight in one environment since
    ``since``, read in one query and shared by every scope measured there (an objectives
    page measuring one key result per value stream reads the audit once, not per stream)."""

    def __init__(
        self, session: Session, environment: str, since: datetime, keys: Select[Any]
    ) -> None:
        env = environments.get_environment(session, environment)
        candidates = timeline.active_flag_keys(env.key, since, None)
        histories = timeline.flow_events(
            session, env.key, keys.where(Flag.key.in_(candidates)), None
        )
        self.environment, self.gated = env.key, env.gated
        self.histories: list[History] = [
            (key, history.flow_item, history.events, [e.at for e in history.events])
            for key, history in histories.items()
        ]

    def scope(self, keys: frozenset[str] | None) -> _ScopeFlows:
        """The histories of the flags ``keys`` names (None: every flag)."""
        if keys is None:
            return _ScopeFlows(self.environment, self.gated, self.histories)
        chosen = [history for history in self.histories if history[0] in keys]
        return _ScopeFlows(self.environment, self.gated, chosen)


def _scope_key_set(session: Session, scope: Scope) -> frozenset[str] | None:
    """The keys of the flags a scope covers (None: every flag, no need to list them)."""
    _, objective_id, value_stream = scope
    if objective_id is None and value_stream is None:
        return None
    return frozenset(session.scalars(scope_keys(session, objective_id, value_stream)))


def _union(key_sets: Sequence[frozenset[str] | None]) -> Select[Any]:
    """The flags any of the scopes covers, as a select for the audit read."""
    named: set[str] = set()
    for keys in key_sets:
        if keys is None:
            return select(Flag.key)
        named |= keys
    return select(Flag.key).where(Flag.key.in_(sorted(named)))


class _ScopeFlows:
    """The flow events of one scope, folded at any moment on demand."""

    def __init__(self, environment: str, gated: bool, histories: list[History]) -> None:
        self.environment, self.gated, self.histories = environment, gated, histories
        self.cache: dict[datetime, list[flow_rules.FlagFlow]] = {}

    def at(self, moment: datetime) -> list[flow_rules.FlagFlow]:
        """Every flag's flow as it stood at ``moment`` (events after it ignored)."""
        if moment not in self.cache:
            scope = flow_rules.FlowScope(self.environment, self.gated, moment)
            folded = (
                flow_rules.flag_flow(key, item, events[: bisect.bisect_right(times, moment)], scope)
                for key, item, events, times in self.histories
            )
            self.cache[moment] = [item for item in folded if item is not None]
        return self.cache[moment]


def scope_keys(session: Session, objective_id: int | None, value_stream: str | None) -> Select[Any]:
    """The keys of the flags a scope covers (every flag without an objective or stream)."""
    if objective_id is not None:
        return flow.objective_flag_keys(objective_id)
    if value_stream is not None:
        return flow.value_stream_flag_keys(session, value_stream)
    return select(Flag.key)


def history_json(measurement: Measurement) -> list[Mapping[str, Any]]:
    """The history as JSON rows (API and UI tables)."""
    return [{"week": p.week, "at": p.at.isoformat(), "value": p.value} for p in measurement.history]
