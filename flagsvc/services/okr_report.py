"""The OKR report: per key result, its progress and its flags, where each stands and flows.

Leaders read it instead of asking "when will it ship?": it shows what happened
(stage per environment, readiness, who the flag already reaches, flow metrics from
the audit) and never a promised date, because flagsvc stores none.

*Early-adopter reach* counts the distinct explicit members of the flag's early-access
cohorts in an environment, minus its exclusions, where the flag is on (early access,
general or released, kill switch off); users who match a cohort's rules without being
members cannot be counted (rules are evaluated per request), so reach is a floor.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow as flow_rules
from flagsvc.domain.errors import NotFoundError
from flagsvc.services import flags
from flagsvc.services import flow
from flagsvc.services import measured
from flagsvc.services import okrs
from flagsvc.services.stale import ON_FOR_SOMEONE
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagExclusion
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort
from flagsvc.storage.models import Objective

MAX_FLAGS = 10_000
"""Most flags one objective's report lists."""


@dataclass(frozen=True, slots=True)
class ReportFlag:
    """One flag of a key result: where it stands, its readiness, reach and flow."""

    detail: flags.FlagDetail
    early_adopter_reach: dict[str, int]
    flow: flow_rules.FlagFlow | None

    @property
    def key(self) -> str:
        """The flag key."""
        return self.detail.flag.key


@dataclass(frozen=True, slots=True)
class KeyResultReport:
    """A key result with its flags and the flow metrics over them."""

    key_result: measured.KeyResultView
    flags: list[ReportFlag]
    flow: flow.FlowMetrics


@dataclass(frozen=True, slots=True)
class ObjectiveReport:
    """Everything the report shows for one objective."""

    objective: Objective
    environment: str
    window: flow.Window
    key_results: list[KeyResultReport]
    flow: flow.FlowMetrics


def objective_report(
    session: Session, objective_id: int, query: flow.FlowQuery, now: datetime
) -> ObjectiveReport:
    """The report of ``objective_id``; flow metrics per ``query`` (environment, period).

    :raise NotFoundError: the objective or the environment does not exist.
    :raise InvalidFieldError: the period is inverted or too long.
    """
    objective = okrs.get_objective(session, objective_id)
    span = flow.window(query, now)
    listed = flags.list_flags(session, flags.FlagQuery(objective_id=objective_id), MAX_FLAGS)
    keys = flow.objective_flag_keys(objective_id)
    flows = {f.flag_key: f for f in flow.load_flows(session, query.environment, keys, span)}
    reach = early_adopter_reach(session, [detail.flag.id for detail in listed])
    report_flags = [_report_flag(detail, reach, flows) for detail in listed]
    key_results = [
        _key_result_report(kr, report_flags, flows, span)
        for kr in measured.views(session, objective.key_results, now)
    ]
    return ObjectiveReport(
        objective, query.environment, span, key_results, flow.summarize(list(flows.values()), span)
    )


def _report_flag(
    detail: flags.FlagDetail,
    reach: dict[int, int],
    flows: dict[str, flow_rules.FlagFlow],
) -> ReportFlag:
    per_environment = {
        state.environment.key: _reach_of(state, reach.get(state.id, 0)) for state in detail.states
    }
    return ReportFlag(detail, per_environment, flows.get(detail.flag.key))


def _reach_of(state: FlagState, members: int) -> int:
    """Members reached: the cohort count where the flag is on for someone, else 0."""
    return members if state.stage in ON_FOR_SOMEONE and not state.killed else 0


def _key_result_report(
    key_result: measured.KeyResultView,
    report_flags: Sequence[ReportFlag],
    flows: dict[str, flow_rules.FlagFlow],
    span: flow.Window,
) -> KeyResultReport:
    mine = [f for f in report_flags if f.detail.flag.key_result_id == key_result.row.id]
    their_flows = [flows[f.key] for f in mine if f.key in flows]
    metrics = flow.summarize(their_flows, span)
    return KeyResultReport(key_result, mine, metrics)


def early_adopter_reach(session: Session, flag_ids: Sequence[int]) -> dict[int, int]:
    """Per flag state id: distinct explicit members of its cohorts, exclusions left out."""
    if not flag_ids:
        return {}
    excluded = select(FlagExclusion.user_key).where(
        and_(
            FlagExclusion.flag_state_id == FlagStateCohort.flag_state_id,
            FlagExclusion.user_key == CohortMember.user_key,
        )
    )
    stmt = (
        select(FlagStateCohort.flag_state_id, func.count(func.distinct(CohortMember.user_key)))
        .join(CohortMember, CohortMember.cohort_id == FlagStateCohort.cohort_id)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .where(FlagState.flag_id.in_(flag_ids), ~excluded.exists())
        .group_by(FlagStateCohort.flag_state_id)
    )
    return {state_id: count for state_id, count in session.execute(stmt)}


@dataclass(frozen=True, slots=True)
class BoardFigures:
    """What the OKR board shows beside progress: reach per flag state and, per
    objective, its flags' flow in one environment over the default window."""

    reach: dict[int, int]  # flag state id -> explicit early adopters reached
    flows: dict[int, flow.FlowMetrics]  # objective id -> its flags' flow
    environment: str
    window: flow.Window | None


def board_figures(
    session: Session,
    listed: Sequence[flags.FlagDetail],
    objective_of: Callable[[flags.FlagDetail], int],
    now: datetime,
    environment: str = "production",
) -> BoardFigures:
    """Reach and flow for the board's flags in a few queries, whatever their number.

    An install without ``environment`` gets reach only (no flow figures).
    """
    reach = early_adopter_reach(session, [detail.flag.id for detail in listed])
    per_state = {
        state.id: _reach_of(state, reach.get(state.id, 0))
        for detail in listed
        for state in detail.states
    }
    span = flow.window(flow.FlowQuery(environment=environment), now)
    keys = select(Flag.key).where(Flag.id.in_([detail.flag.id for detail in listed]))
    try:
        flows = {f.flag_key: f for f in flow.load_flows(session, environment, keys, span)}
    except NotFoundError:
        return BoardFigures(per_state, {}, environment, None)
    grouped: dict[int, list[flow_rules.FlagFlow]] = {}
    for detail in listed:
        if detail.flag.key in flows:
            grouped.setdefault(objective_of(detail), []).append(flows[detail.flag.key])
    summaries = {objective: flow.summarize(found, span) for objective, found in grouped.items()}
    return BoardFigures(per_state, summaries, environment, span)
