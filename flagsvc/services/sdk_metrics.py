"""SDK evaluation counts per flag and environment: when was each flag last evaluated?

SDKs batch their counts and post them every few seconds. They are observations, not
changes, so they are not audited and do not move the audit head (no snapshot
rebuild, no stream event). Each batch is one upsert that adds in the database
(``count = count + excluded.count``, newest ``last_evaluated_at`` wins), so
concurrent batches from many SDKs and instances never lose an increment, on
PostgreSQL and SQLite alike (both speak ``INSERT … ON CONFLICT DO UPDATE``). Rows are
written in flag-id order so two overlapping batches lock rows in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from flagsvc.services import early_adopters
from flagsvc.services import reach
from flagsvc.services.environments import get_environment
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagEvaluation

MAX_BATCH = 1_000
"""Most entries one ``POST /sdk/v1/metrics`` may carry."""
_TABLE = FlagEvaluation.metadata.tables[FlagEvaluation.__tablename__]


@dataclass(frozen=True, slots=True)
class EvaluationCount:
    """One SDK report: ``count`` evaluations of ``flag_key``, the last at ``last_evaluated_at``,
    ``cohort`` of them answered on through an early-access cohort, for the users whose
    hashed keys are ``adopters``."""

    flag_key: str
    count: int
    last_evaluated_at: datetime
    cohort: int = 0
    adopters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricsRecorded:
    """How many entries were stored, how many named no known flag, and the
    evaluations the stored entries add up to."""

    accepted: int
    ignored: int
    evaluations: int = 0


def record_evaluations(
    session: Session,
    environment_key: str,
    counts: Sequence[EvaluationCount],
    now: datetime,
    sketches: early_adopters.Sketches,
) -> MetricsRecorded:
    """Add ``counts`` to the environment's totals, to this hour's early-access reach
    (``services.reach``) and to the early-adopter evidence (``services.early_adopters``,
    distinct users counted in ``sketches``); unknown flag keys are skipped.

    A ``last_evaluated_at`` in the future (an SDK host with a fast clock) is stored
    as ``now``, so no flag ever looks evaluated later than it could have been.
    """
    environment = get_environment(session, environment_key)
    flag_ids = _flag_ids(session, {c.flag_key for c in counts})
    known = [c for c in counts if c.flag_key in flag_ids]
    rows = _merged_rows(known, flag_ids, environment.id, now)
    if rows:
        session.execute(_upsert(session, rows))
    hours = (reach.HourCount(flag_ids[c.flag_key], c.count, c.cohort) for c in known)
    reach.record(session, environment.id, hours, now)
    reports = (
        early_adopters.EarlyAccessReport(flag_ids[c.flag_key], c.cohort, c.adopters) for c in known
    )
    early_adopters.record(session, environment.id, reports, sketches)
    evaluations = sum(c.count for c in known)
    return MetricsRecorded(len(known), len(counts) - len(known), evaluations)


def evaluation_stats(session: Session, flag_key: str) -> dict[str, dict[str, Any]]:
    """Per environment key: ``count`` and ``last_evaluated_at`` (aware UTC) for the flag.

    Environments whose SDKs never reported the flag (and unknown flags) are absent.
    """
    stmt = (
        select(Environment.key, FlagEvaluation.evaluation_count, FlagEvaluation.last_evaluated_at)
        .join(Environment, Environment.id == FlagEvaluation.environment_id)
        .join(Flag, Flag.id == FlagEvaluation.flag_id)
        .where(Flag.key == flag_key)
        .order_by(Environment.id)
    )
    return {
        env: {"count": count, "last_evaluated_at": last}
        for env, count, last in session.execute(stmt)
    }


def _flag_ids(session: Session, keys: Iterable[str]) -> dict[str, int]:
    wanted = sorted(keys)
    if not wanted:
        return {}
    rows = session.execute(select(Flag.key, Flag.id).where(Flag.key.in_(wanted)))
    return {key: flag_id for key, flag_id in rows}


def _merged_rows(
    counts: Iterable[EvaluationCount], flag_ids: dict[str, int], environment_id: int, now: datetime
) -> list[dict[str, Any]]:
    """One row per flag (an upsert may not touch a row twice), in flag-id order."""
    merged: dict[int, dict[str, Any]] = {}
    for entry in counts:
        flag_id = flag_ids[entry.flag_key]
        at = min(entry.last_evaluated_at, now)
        row = merged.setdefault(
            flag_id,
            {
                "flag_id": flag_id,
                "environment_id": environment_id,
                "evaluation_count": 0,
                "last_evaluated_at": at,
            },
        )
        row["evaluation_count"] += entry.count
        row["last_evaluated_at"] = max(row["last_evaluated_at"], at)
    return [merged[flag_id] for flag_id in sorted(merged)]


def _upsert(session: Session, rows: list[dict[str, Any]]) -> Any:
    """``INSERT … ON CONFLICT (flag_id, environment_id) DO UPDATE`` adding to the totals."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_TABLE).values(rows)
    new, old = stmt.excluded, _TABLE.c
    return stmt.on_conflict_do_update(
        index_elements=[old.flag_id, old.environment_id],
        set_={
            "evaluation_count": old.evaluation_count + new.evaluation_count,
            "last_evaluated_at": case(
                (new.last_evaluated_at > old.last_evaluated_at, new.last_evaluated_at),
                else_=old.last_evaluated_at,
            ),
        },
    )
