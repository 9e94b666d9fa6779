"""The promise board: finished features, proven in early access, safe to announce.

*OKRs are not guaranteed deliveries*: marketing may announce "coming soon" early, but
only for finished work. A flag is on the board in an environment when all of these
hold, read from the flag state and the audit (never from a date someone typed):

- it is a ``feature`` (defects, risks and debt are not announced), not archived;
- it is in ``early_access`` or ``general`` (finished, not yet released: released work
  has nothing left to promise), and its kill switch is off;
- it has been in early access or beyond without a break for ``min_days``;
- nobody pulled its kill switch in the last ``quiet_days``.

``safe_since`` is when the last of these became true (the Atom feed's ``updated``).
The evidence beside each: days in early access, early adopters reached (explicit
cohort members the flag is on for, exclusions left out; and the distinct users the
SDKs saw it on for through early access, ``services.early_adopters``, within 0.81 %),
SDK-reported evaluations (all time, with how many came through an early-access cohort,
and the last 24 hours likewise), the last kill, and the readiness checklist's progress.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import flow as flow_rules
from flagsvc.domain.actions import Action
from flagsvc.domain.stages import Stage
from flagsvc.services import early_adopters
from flagsvc.services import environments
from flagsvc.services import flags
from flagsvc.services import okr_report
from flagsvc.services import reach
from flagsvc.services import timeline
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagEvaluation
from flagsvc.storage.models import FlagReachHour
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective

FINISHED = (Stage.EARLY_ACCESS.value, Stage.GENERAL.value)
"""Stages of finished work not yet released."""
DEFAULT_MIN_DAYS = 7
DEFAULT_QUIET_DAYS = 14


@dataclass(frozen=True, slots=True)
class PromiseQuery:
    """Which environment, and what proven means."""

    environment: str = "production"
    min_days: int = DEFAULT_MIN_DAYS
    quiet_days: int = DEFAULT_QUIET_DAYS


@dataclass(frozen=True, slots=True)
class Promise:
    """One feature safe to announce, with the evidence."""

    flag: str
    name: str
    description: str
    objective: str
    key_result: str
    stage: str
    rollout_percent: float
    early_access_since: datetime
    days_in_early_access: float
    safe_since: datetime
    early_adopters: int
    evaluations: int
    evaluations_24h: int
    early_access_evaluations_24h: int
    last_killed_at: datetime | None
    readiness: dict[str, Any]
    early_adopters_seen: int = 0
    early_access_evaluations: int = 0


@dataclass(frozen=True, slots=True)
class Board:
    """The board of one environment as of ``as_of``."""

    environment: str
    as_of: datetime
    min_days: int
    quiet_days: int
    items: list[Promise]


def promise_for(
    session: Session, query: PromiseQuery, flag_key: str, now: datetime
) -> Promise | None:
    """The flag's promise if the board of ``query.environment`` lists it now, else None
    (what a webhook's "entered early access" notification says about it; without the
    distinct early adopters, which live in Redis or a sketch read apart)."""
    found = board(session, query, now, flag_key=flag_key).items
    return found[0] if found else None


def board(
    session: Session,
    query: PromiseQuery,
    now: datetime,
    sketches: early_adopters.Sketches | None = None,
    flag_key: str | None = None,
) -> Board:
    """Every feature safe to promise in ``query.environment``, newest safe first
    (only ``flag_key``, when given). Distinct early adopters are counted in
    ``sketches`` (None: not counted, 0).

    :raise NotFoundError: the environment does not exist.
    """
    env = environments.get_environment(session, query.environment)
    only = () if flag_key is None else (Flag.key == flag_key,)
    rows = session.execute(
        select(FlagState, Objective.title, KeyResult.title)
        .join(Flag, Flag.id == FlagState.flag_id)
        .join(KeyResult, KeyResult.id == Flag.key_result_id)
        .join(Objective, Objective.id == KeyResult.objective_id)
        .where(
            FlagState.environment_id == env.id,
            FlagState.stage.in_(FINISHED),
            FlagState.killed.is_(False),
            Flag.flow_item == "feature",
            Flag.archived_at.is_(None),
            *only,
        )
    ).all()
    if not rows:
        return Board(env.key, now, query.min_days, query.quiet_days, [])
    states = [row[0] for row in rows]
    keys = select(Flag.key).where(Flag.id.in_([s.flag_id for s in states]))
    histories = timeline.flow_events(session, env.key, keys, None)
    members = okr_report.early_adopter_reach(session, [s.flag_id for s in states])
    counts = _evaluations(session, env.id, [s.flag_id for s in states], now)
    seen = early_adopters.evidence(session, env.id, [s.flag_id for s in states], sketches)
    items = []
    for state, objective, key_result in rows:
        history = histories.get(state.flag.key)
        if history is None:
            continue
        found = _promise(state, objective, key_result, history.events, query, now)
        if found is not None:
            total, day, cohort = counts.get(state.flag_id, (0, 0, 0))
            evidence = seen.get(state.flag_id, early_adopters.NONE)
            counted = _with_counts(found, members.get(state.id, 0), total, day, cohort)
            items.append(dataclasses.replace(
                counted,
                early_adopters_seen=evidence.early_adopters,
                early_access_evaluations=evidence.early_access_evaluations,
            ))  # fmt: skip
    items.sort(key=lambda p: (p.safe_since, p.flag), reverse=True)
    return Board(env.key, now, query.min_days, query.quiet_days, items)


def _promise(
    state: FlagState,
    objective: str,
    key_result: str,
    events: Sequence[flow_rules.FlowEvent],
    query: PromiseQuery,
    now: datetime,
) -> Promise | None:
    """The flag's promise if it is proven and quiet, else None."""
    created = flow_rules.created_at(events) or state.flag.created_at
    since = live_since(flow_rules.stage_periods(events, state.environment.key, created))
    if since is None:
        return None
    kills = [e.at for e in events if e.action == Action.FLAG_KILLED]
    last_kill = kills[-1] if kills else None
    safe = since + timedelta(days=query.min_days)
    if last_kill is not None:
        safe = max(safe, last_kill + timedelta(days=query.quiet_days))
    if safe > now:
        return None
    detail = flags.FlagDetail(state.flag, 0, [state])
    readiness = {**detail.readiness, "ready": detail.ready}
    return Promise(
        state.flag.key, state.flag.name, state.flag.description, objective, key_result,
        state.stage, flags.percent(state), since, flow_rules.days((now - since).total_seconds()),
        safe, 0, 0, 0, 0, last_kill, readiness,
    )  # fmt: skip


def live_since(periods: Sequence[flow_rules.StagePeriod]) -> datetime | None:
    """Start of the current unbroken stretch in early access or general (None: not in one)."""
    since = None
    for period in periods:
        since = (since or period.start) if period.stage in FINISHED else None
    return since


def _with_counts(item: Promise, members: int, total: int, day: int, cohort: int) -> Promise:
    return Promise(
        item.flag, item.name, item.description, item.objective, item.key_result, item.stage,
        item.rollout_percent, item.early_access_since, item.days_in_early_access,
        item.safe_since, members, total, day, cohort, item.last_killed_at, item.readiness,
    )  # fmt: skip


def _evaluations(
    session: Session, environment_id: int, flag_ids: Sequence[int], now: datetime
) -> dict[int, tuple[int, int, int]]:
    """Per flag: evaluations reported ever, in the last 24 hours, and through a cohort."""
    totals = {
        flag_id: count
        for flag_id, count in session.execute(
            select(FlagEvaluation.flag_id, FlagEvaluation.evaluation_count).where(
                FlagEvaluation.environment_id == environment_id,
                FlagEvaluation.flag_id.in_(flag_ids),
            )
        )
    }
    recent = {
        flag_id: (int(evaluations or 0), int(cohort or 0))
        for flag_id, evaluations, cohort in session.execute(
            select(
                FlagReachHour.flag_id,
                func.sum(FlagReachHour.evaluation_count),
                func.sum(FlagReachHour.cohort_count),
            )
            .where(
                FlagReachHour.environment_id == environment_id,
                FlagReachHour.flag_id.in_(flag_ids),
                FlagReachHour.hour > reach.hour_of(now - reach.WINDOW),
            )
            .group_by(FlagReachHour.flag_id)
        )
    }
    return {
        flag_id: (int(totals.get(flag_id, 0)), *recent.get(flag_id, (0, 0))) for flag_id in flag_ids
    }
