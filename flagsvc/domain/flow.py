"""Release timelines and flow metrics, derived from audit events alone (no I/O here).

Everything is computed from the audit, so a timeline or a metric can never disagree
with it: the service loads the few event kinds that matter as :class:`FlowEvent`
values (in chain order) and these functions fold them into stage periods, readiness
and kill-switch intervals, and per-flag flow figures.

Each instant of a flag's flow (created → released, or → the report's ``as_of`` while
still in flight) falls into exactly one bucket, checked in this order:

1. *readiness wait*: in ``early_access`` in a gated environment while readiness is
   incomplete (finished work held for marketing / customer success);
2. *blocked*: killed (the kill switch is on: on for nobody, waiting on a fix);
3. *active*: everything else (building it dark, early access once ready, ramping).

Flow efficiency is active / flow time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from flagsvc.domain.actions import Action
from flagsvc.domain.stages import Stage

FLOW_ITEMS = ("feature", "defect", "risk", "debt")
"""What a flag's work is, in the flow framework's four kinds (its distribution)."""

FLOW_ACTIONS = (
    Action.FLAG_CREATED,
    Action.FLAG_STAGE_CHANGED,
    Action.FLAG_KILLED,
    Action.FLAG_RESUMED,
    Action.FLAG_READY,
    Action.FLAG_READINESS_LOST,
)
"""The event kinds flow metrics read."""
TIMELINE_ACTIONS = (*FLOW_ACTIONS, Action.FLAG_LAUNCH_RAN, Action.FLAG_LAUNCH_SKIPPED)
"""The event kinds a timeline shows."""

IN_FLIGHT = frozenset({Stage.EARLY_ACCESS, Stage.GENERAL})
FLOW_STAGES = (Stage.OFF, Stage.EARLY_ACCESS, Stage.GENERAL)
"""Stages a flag passes through before release: the ones whose dwell is measured."""
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """One audit event, reduced to what timelines and flow metrics read."""

    seq: int
    at: datetime
    action: str
    flag_key: str
    environment: str | None = None
    stage: str | None = None
    rollout_percent: float | None = None
    actor: str = ""
    planned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StagePeriod:
    """A stretch at one stage and ramp; ``end`` is None for the current one."""

    stage: str
    rollout_percent: float
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Interval:
    """A stretch of time; ``end`` is None while it lasts."""

    start: datetime
    end: datetime | None

    def covers(self, at: datetime) -> bool:
        """Tell whether ``at`` falls inside (start inclusive, end exclusive)."""
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True, slots=True)
class Marker:
    """A point event on a timeline: kill switch flips and launch runs."""

    action: str
    at: datetime
    actor: str
    planned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EnvironmentTimeline:
    """Milestones of one flag in one environment (firsts; None: not reached)."""

    environment: str
    created: datetime
    ready_first: datetime | None
    ready_latest: datetime | None
    first_early_access: datetime | None
    general_started: datetime | None
    released: datetime | None
    retired: datetime | None
    kill_switch: tuple[Marker, ...]
    launches: tuple[Marker, ...]
    stages: tuple[StagePeriod, ...]


@dataclass(frozen=True, slots=True)
class FlagFlow:
    """One flag's flow in one environment up to ``as_of`` (durations in seconds)."""

    flag_key: str
    flow_item: str
    created: datetime
    released: datetime | None
    as_of: datetime
    periods: tuple[StagePeriod, ...]
    dwell: Mapping[str, float]
    readiness_wait: float
    blocked: float
    waiting_for_readiness_now: bool

    @property
    def flow_time(self) -> float:
        """Seconds from creation to release (to ``as_of`` while in flight)."""
        return ((self.released or self.as_of) - self.created).total_seconds()

    @property
    def active(self) -> float:
        """Seconds of flow time that were neither readiness wait nor blocked."""
        return max(self.flow_time - self.readiness_wait - self.blocked, 0.0)

    @property
    def efficiency(self) -> float | None:
        """Active share of flow time (None for a zero-length flow)."""
        return None if self.flow_time <= 0 else self.active / self.flow_time

    def stage_at(self, at: datetime) -> str | None:
        """The stage at ``at`` (None before the flag existed here)."""
        return stage_at(self.periods, at)


def created_at(events: Sequence[FlowEvent]) -> datetime | None:
    """When the flag was created (its ``flag.created`` event)."""
    return next((e.at for e in events if e.action == Action.FLAG_CREATED), None)


def stage_periods(
    events: Sequence[FlowEvent], environment: str, opened: datetime
) -> tuple[StagePeriod, ...]:
    """The stage and ramp periods in ``environment``, starting dark at ``opened``."""
    periods: list[StagePeriod] = []
    stage: str = Stage.OFF
    percent, start = 0.0, opened
    for event in events:
        if event.action != Action.FLAG_STAGE_CHANGED or event.environment != environment:
            continue
        periods.append(StagePeriod(stage, percent, start, event.at))
        stage, percent, start = event.stage or Stage.OFF, event.rollout_percent or 0.0, event.at
    periods.append(StagePeriod(stage, percent, start, None))
    return tuple(periods)


def ready_intervals(events: Sequence[FlowEvent]) -> tuple[Interval, ...]:
    """When the flag was ready (flag-wide): from each ``flag.ready`` to the next loss."""
    return _toggled(events, Action.FLAG_READY, Action.FLAG_READINESS_LOST, environment=None)


def killed_intervals(events: Sequence[FlowEvent], environment: str) -> tuple[Interval, ...]:
    """When the kill switch was on in ``environment``."""
    return _toggled(events, Action.FLAG_KILLED, Action.FLAG_RESUMED, environment=environment)


def _toggled(
    events: Sequence[FlowEvent], on: str, off: str, environment: str | None
) -> tuple[Interval, ...]:
    intervals: list[Interval] = []
    since: datetime | None = None
    for event in events:
        if environment is not None and event.environment != environment:
            continue
        if event.action == on and since is None:
            since = event.at
        elif event.action == off and since is not None:
            intervals.append(Interval(since, event.at))
            since = None
    if since is not None:
        intervals.append(Interval(since, None))
    return tuple(intervals)


def stage_at(periods: Sequence[StagePeriod], at: datetime) -> str | None:
    """The stage in force at ``at``: the last period that started at or before it."""
    current = None
    for period in periods:
        if period.start > at:
            break
        current = period.stage
    return current


def first_entry(periods: Sequence[StagePeriod], stage: str) -> datetime | None:
    """When the flag first entered ``stage`` (None if it never did)."""
    return next((p.start for p in periods if p.stage == stage), None)


def environment_timeline(
    events: Sequence[FlowEvent], environment: str, opened: datetime
) -> EnvironmentTimeline:
    """The milestones, kill-switch flips, launch runs and stage periods in one environment."""
    periods = stage_periods(events, environment, opened)
    ready = [e.at for e in events if e.action == Action.FLAG_READY]
    here = [e for e in events if e.environment == environment]
    return EnvironmentTimeline(
        environment=environment,
        created=opened,
        ready_first=ready[0] if ready else None,
        ready_latest=ready[-1] if ready else None,
        first_early_access=first_entry(periods, Stage.EARLY_ACCESS),
        general_started=first_entry(periods, Stage.GENERAL),
        released=first_entry(periods, Stage.RELEASED),
        retired=first_entry(periods, Stage.RETIRED),
        kill_switch=_markers(here, (Action.FLAG_KILLED, Action.FLAG_RESUMED)),
        launches=_markers(here, (Action.FLAG_LAUNCH_RAN, Action.FLAG_LAUNCH_SKIPPED)),
        stages=periods,
    )


def _markers(events: Sequence[FlowEvent], actions: tuple[str, ...]) -> tuple[Marker, ...]:
    return tuple(
        Marker(e.action.removeprefix("flag."), e.at, e.actor, e.planned_at)
        for e in events
        if e.action in actions
    )


@dataclass(frozen=True, slots=True)
class FlowScope:
    """Where and until when a flag's flow is measured."""

    environment: str
    gated: bool
    as_of: datetime


def flag_flow(
    flag_key: str, flow_item: str, events: Sequence[FlowEvent], scope: FlowScope
) -> FlagFlow | None:
    """One flag's flow in the scope's environment (None if it did not exist by ``as_of``).

    ``events`` are the flag's events in chain order, none later than ``as_of``.
    Release is the first entry into ``released``; a later rollback does not undo it.
    """
    created = created_at(events)
    if created is None or created > scope.as_of:
        return None
    periods = stage_periods(events, scope.environment, created)
    released = first_entry(periods, Stage.RELEASED)
    sweep = _Sweep(scope, created)
    sweep.run(events, released or scope.as_of)
    return FlagFlow(
        flag_key, flow_item, created, released, scope.as_of, periods,
        {stage: sweep.totals.get(stage, 0.0) for stage in FLOW_STAGES},
        sweep.totals.get(WAIT, 0.0), sweep.totals.get(BLOCKED, 0.0),
        released is None and sweep.waits_for_readiness(),
    )  # fmt: skip


def flag_flows(
    flag_key: str,
    flow_item: str,
    events: Sequence[FlowEvent],
    scope: FlowScope,
    moments: Sequence[datetime],
) -> list[FlagFlow | None]:
    """The flag's flow at each of ``moments`` (ascending), as :func:`flag_flow` gives it
    from the events up to that moment, in one pass over ``events``.

    A measured key result reads a flag's flow at the end of each of a dozen weeks: the
    events are walked once and the running totals copied at each moment, so every
    figure adds the same seconds in the same order as :func:`flag_flow` would. Events
    whose times go back (a clock set back between two writes) take :func:`flag_flow` at
    each moment. ``scope.as_of`` is not read: each moment is its own.
    """
    times = [event.at for event in events]
    if any(later < earlier for earlier, later in pairwise(times)):
        return [
            flag_flow(
                flag_key, flow_item, events[: bisect_right(times, moment)], _at(scope, moment)
            )
            for moment in moments
        ]
    running = _Running(flag_key, flow_item, events, scope)
    return [running.at(moment) for moment in moments]


def _at(scope: FlowScope, moment: datetime) -> FlowScope:
    return FlowScope(scope.environment, scope.gated, moment)


class _Running:
    """A flag's flow built up event by event (times in order), read at growing moments."""

    def __init__(
        self, flag_key: str, flow_item: str, events: Sequence[FlowEvent], scope: FlowScope
    ) -> None:
        self.flag_key, self.flow_item, self.events, self.scope = flag_key, flow_item, events, scope
        self.read = 0  # events up to the last moment
        self.created: datetime | None = None
        self.changes: list[FlowEvent] = []  # stage changes in the environment, so far
        self.released: datetime | None = None
        self.sweep: _Sweep | None = None
        self.swept = 0  # events the sweep has applied
        self.periods: tuple[StagePeriod, ...] = ()  # of ``changes``, shared while they last

    def at(self, moment: datetime) -> FlagFlow | None:
        """What :func:`flag_flow` says at ``moment`` (not before the previous one)."""
        while self.read < len(self.events) and self.events[self.read].at <= moment:
            self._read(self.events[self.read])
            self.read += 1
        if self.created is None or self.created > moment:
            return None
        if self.sweep is None:
            self.sweep = _Sweep(self.scope, self.created)
        end = self.released or moment
        while self.swept < self.read and self.events[self.swept].at <= end:
            self.sweep.step(self.events[self.swept])
            self.swept += 1
        sweep = self.sweep.copy()
        sweep.finish(end)
        if len(self.periods) != len(self.changes) + 1:
            self.periods = stage_periods(self.changes, self.scope.environment, self.created)
        return FlagFlow(
            self.flag_key, self.flow_item, self.created, self.released, moment, self.periods,
            {stage: sweep.totals.get(stage, 0.0) for stage in FLOW_STAGES},
            sweep.totals.get(WAIT, 0.0), sweep.totals.get(BLOCKED, 0.0),
            self.released is None and sweep.waits_for_readiness(),
        )  # fmt: skip

    def _read(self, event: FlowEvent) -> None:
        if event.action == Action.FLAG_CREATED and self.created is None:
            self.created = event.at
        elif (
            event.action == Action.FLAG_STAGE_CHANGED
            and event.environment == self.scope.environment
        ):
            self.changes.append(event)
            if self.released is None and (event.stage or Stage.OFF) == Stage.RELEASED:
                self.released = event.at


WAIT, BLOCKED, ACTIVE = "readiness_wait", "blocked", "active"


class _Sweep:
    """One pass over a flag's events in chain order, adding up each stretch's seconds.

    Between two events the stage, readiness and kill switch are constant, so each
    stretch goes whole to its stage and to one bucket (see the module docstring).
    """

    def __init__(self, scope: FlowScope, created: datetime) -> None:
        self.scope, self.last = scope, created
        self.stage: str = Stage.OFF
        self.ready, self.killed = False, False
        self.totals: dict[str, float] = {}

    def run(self, events: Sequence[FlowEvent], end: datetime) -> None:
        """Account for the time from creation to ``end``."""
        for event in events:
            if event.at > end:
                break
            self.step(event)
        self.finish(end)

    def step(self, event: FlowEvent) -> None:
        """Account for the time up to ``event`` and apply it (if it concerns the flow here)."""
        if self._applies(event):
            self._accrue(event.at)
            self._apply(event)

    def finish(self, end: datetime) -> None:
        """Account for the time from the last event to ``end``."""
        self._accrue(end)

    def copy(self) -> _Sweep:
        """An independent copy (to finish at one moment and go on from here)."""
        twin = _Sweep(self.scope, self.last)
        twin.stage, twin.ready, twin.killed = self.stage, self.ready, self.killed
        twin.totals = dict(self.totals)
        return twin

    def waits_for_readiness(self) -> bool:
        """In early access in a gated environment while readiness is incomplete (now)."""
        return self.scope.gated and self.stage == Stage.EARLY_ACCESS and not self.ready

    def _applies(self, event: FlowEvent) -> bool:
        if event.action in (Action.FLAG_READY, Action.FLAG_READINESS_LOST):
            return True
        return event.environment == self.scope.environment

    def _apply(self, event: FlowEvent) -> None:
        if event.action == Action.FLAG_STAGE_CHANGED:
            self.stage = event.stage or Stage.OFF
        elif event.action in (Action.FLAG_READY, Action.FLAG_READINESS_LOST):
            self.ready = event.action == Action.FLAG_READY
        elif event.action in (Action.FLAG_KILLED, Action.FLAG_RESUMED):
            self.killed = event.action == Action.FLAG_KILLED

    def _accrue(self, until: datetime) -> None:
        seconds = max((until - self.last).total_seconds(), 0.0)
        self.last = max(self.last, until)
        bucket = WAIT if self.waits_for_readiness() else BLOCKED if self.killed else ACTIVE
        for key in (self.stage, bucket):
            self.totals[key] = self.totals.get(key, 0.0) + seconds


def days(seconds: float) -> float:
    """Seconds as days, rounded to the minute's precision the report needs."""
    return round(seconds / SECONDS_PER_DAY, 4)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` quantile by linear interpolation between closest ranks (None if empty)."""
    if not values:
        return None
    ranked = sorted(values)
    position = share * (len(ranked) - 1)
    low = int(position)
    high = min(low + 1, len(ranked) - 1)
    return ranked[low] + (ranked[high] - ranked[low]) * (position - low)
