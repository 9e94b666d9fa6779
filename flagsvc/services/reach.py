"""Early-access reach: the share of evaluations SDKs answered on through a cohort.

A catch-all cohort rule that slipped past the checks (``domain/cohort_bounds``), or
one that is bounded on paper but matches most real users, shows here: the SDKs
report, per flag, how many evaluations were answered on through an early-access
cohort (reason ``COHORT``), and the flag page warns when that share of the last 24
hours is above ``FLAGSVC_REACH_WARNING_PERCENT``.

Counts go to a ring of 24 hourly slots per flag and environment
(:class:`~flagsvc.storage.models.FlagReachHour`), written with one upsert per batch
that adds within the hour and overwrites a slot a day old, so concurrent batches
never lose an increment and the table never grows beyond a day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagReachHour

WINDOW = timedelta(hours=24)
"""How far back the reach looks (the ring holds exactly this much)."""
MIN_EVALUATIONS = 100
"""Fewer evaluations than this in the window are too few to warn about a share."""
_SLOTS = 24
_TABLE = FlagReachHour.metadata.tables[FlagReachHour.__tablename__]


@dataclass(frozen=True, slots=True)
class Reach:
    """Evaluations in the window and how many were on through a cohort."""

    evaluations: int
    cohort: int

    @property
    def percent(self) -> float:
        """The share on through a cohort, in percent (0 without evaluations)."""
        return 100 * self.cohort / self.evaluations if self.evaluations else 0.0

    def above(self, warning_percent: float) -> bool:
        """Worth a warning: enough evaluations, and a share above ``warning_percent``."""
        return self.evaluations >= MIN_EVALUATIONS and self.percent > warning_percent


@dataclass(frozen=True, slots=True)
class HourCount:
    """One flag's evaluations in one report, and how many were on through a cohort."""

    flag_id: int
    evaluations: int
    cohort: int


def hour_of(moment: datetime) -> int:
    """Hours since the Unix epoch (UTC): the ring's clock."""
    return int(moment.timestamp() // 3600)


def record(
    session: Session, environment_id: int, counts: Iterable[HourCount], now: datetime
) -> None:
    """Add one batch's counts to the current hour's slot of each flag (flag-id order)."""
    hour = hour_of(now)
    merged: dict[int, list[int]] = {}
    for count in counts:
        totals = merged.setdefault(count.flag_id, [0, 0])
        totals[0] += count.evaluations
        totals[1] += count.cohort
    rows = [
        {
            "flag_id": flag_id,
            "environment_id": environment_id,
            "slot": hour % _SLOTS,
            "hour": hour,
            "evaluation_count": evaluations,
            "cohort_count": cohort,
        }
        for flag_id, (evaluations, cohort) in sorted(merged.items())
    ]
    if rows:
        session.execute(_upsert(session, rows))


def reach_by_environment(session: Session, flag_key: str, now: datetime) -> dict[str, Reach]:
    """Per environment key: the flag's reach over the last 24 hours (absent: no reports)."""
    since = hour_of(now - WINDOW)
    stmt = (
        select(
            Environment.key,
            func.sum(FlagReachHour.evaluation_count),
            func.sum(FlagReachHour.cohort_count),
        )
        .join(Environment, Environment.id == FlagReachHour.environment_id)
        .join(Flag, Flag.id == FlagReachHour.flag_id)
        .where(Flag.key == flag_key, FlagReachHour.hour > since)
        .group_by(Environment.key)
    )
    return {env: Reach(int(total), int(cohort)) for env, total, cohort in session.execute(stmt)}


def _upsert(session: Session, rows: list[dict[str, Any]]) -> Any:
    """Same hour: add. A newer hour: the slot starts again. An older one: too late, kept out."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_TABLE).values(rows)
    new, old = stmt.excluded, _TABLE.c

    def rolled(column: str) -> Any:
        return case(
            (new.hour == old.hour, old[column] + new[column]),
            (new.hour > old.hour, new[column]),
            else_=old[column],
        )

    return stmt.on_conflict_do_update(
        index_elements=[old.flag_id, old.environment_id, old.slot],
        set_={
            "evaluation_count": rolled("evaluation_count"),
            "cohort_count": rolled("cohort_count"),
            "hour": case((new.hour > old.hour, new.hour), else_=old.hour),
        },
    )
