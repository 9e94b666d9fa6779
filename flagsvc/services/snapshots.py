"""Build an environment's snapshot: everything the engine needs to evaluate locally.

The snapshot's ``version`` is the audit head (the ``seq`` of the newest event): every
change writes an event in its own transaction, so a new version means something may
have changed and an unchanged head means nothing did. SDKs and the service's own
``evaluate`` cache on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.stages import Stage
from flagsvc.services.environments import get_environment
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import FlagExclusion
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort

SPEC_VERSION = 1


def audit_head(session: Session) -> int:
    """The newest audit ``seq`` (0 for an empty log): the change counter."""
    return session.scalar(select(func.coalesce(func.max(AuditEvent.seq), 0))) or 0


def build_snapshot(session: Session, environment_key: str) -> dict[str, Any]:
    """The wire snapshot of one environment (retired flags are left out)."""
    environment = get_environment(session, environment_key)
    version = audit_head(session)
    states = session.scalars(
        select(FlagState)
        .where(FlagState.environment_id == environment.id, FlagState.stage != Stage.RETIRED.value)
        .order_by(FlagState.id)
    ).all()
    cohort_keys = _cohort_keys_by_state(session, [s.id for s in states])
    exclusions = _exclusions_by_state(session, [s.id for s in states])
    flags = {s.flag.key: _flag_wire(s, cohort_keys[s.id], exclusions[s.id]) for s in states}
    used = {key for keys in cohort_keys.values() for key in keys}
    return {
        "spec_version": SPEC_VERSION,
        "environment": environment.key,
        "version": version,
        "flags": flags,
        "cohorts": _cohorts_wire(session, used),
    }


def _flag_wire(state: FlagState, cohorts: list[str], exclusions: list[str]) -> dict[str, Any]:
    return {
        "key": state.flag.key,
        "salt": state.flag.salt,
        "stage": state.stage,
        "rollout_percent": state.rollout_basis_points / 100,
        "killed": state.killed,
        "cohorts": cohorts,
        "exclusions": exclusions,
        "payload": state.flag.payload,
    }


def _cohort_keys_by_state(session: Session, state_ids: Iterable[int]) -> dict[int, list[str]]:
    rows = session.execute(
        select(FlagStateCohort.flag_state_id, Cohort.key)
        .join(Cohort, Cohort.id == FlagStateCohort.cohort_id)
        .where(FlagStateCohort.flag_state_id.in_(list(state_ids)))
        .order_by(FlagStateCohort.flag_state_id, FlagStateCohort.position)
    )
    grouped: dict[int, list[str]] = defaultdict(list)
    for state_id, key in rows:
        grouped[state_id].append(key)
    return grouped


def _exclusions_by_state(session: Session, state_ids: Iterable[int]) -> dict[int, list[str]]:
    rows = session.execute(
        select(FlagExclusion.flag_state_id, FlagExclusion.user_key)
        .where(FlagExclusion.flag_state_id.in_(list(state_ids)))
        .order_by(FlagExclusion.flag_state_id, FlagExclusion.user_key)
    )
    grouped: dict[int, list[str]] = defaultdict(list)
    for state_id, user_key in rows:
        grouped[state_id].append(user_key)
    return grouped


def _cohorts_wire(session: Session, keys: set[str]) -> dict[str, Any]:
    if not keys:
        return {}
    cohorts = session.scalars(select(Cohort).where(Cohort.key.in_(sorted(keys)))).all()
    members: dict[int, list[str]] = defaultdict(list)
    member_rows = session.execute(
        select(CohortMember.cohort_id, CohortMember.user_key)
        .where(CohortMember.cohort_id.in_([c.id for c in cohorts]))
        .order_by(CohortMember.cohort_id, CohortMember.user_key)
    )
    for cohort_id, user_key in member_rows:
        members[cohort_id].append(user_key)
    return {
        c.key: {"key": c.key, "members": members[c.id], "rules": c.rules, "opt_in": c.opt_in}
        for c in cohorts
    }
