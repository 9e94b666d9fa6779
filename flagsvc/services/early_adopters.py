"""Early-adopter evidence: distinct users a flag reached through early access, per environment.

The SDKs report, with each metrics batch, the evaluations answered on through an
early-access cohort and the *hashed* keys of the users they were for (never the raw
keys: ``flagsvc_sdk._metrics.adopter_hash``). Here the evaluations are added up for
good (``flag_early_adopters.early_access_evaluations``) and the hashes go into a
HyperLogLog sketch per flag and environment, an approximate distinct count in 12-16
KiB that keeps no hash it is given:

- with Redis (``REDIS_URL``): ``PFADD`` into ``flagsvc:early-adopters:<env id>:<flag id>``,
  read with ``PFCOUNT``; shared by every instance;
- without it (the in-process broker, SQLite alone): the same sketch as bytes in
  ``flag_early_adopters.sketch``, merged under the row's lock
  (``flagsvc.domain.hyperloglog``), so the demo loader and the server, two processes,
  see one count.

Both count within a standard error of 0.81 % (:data:`STANDARD_ERROR`). Reports are
observations: a Redis error drops the batch's hashes (logged), never the request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from flagsvc.domain import hyperloglog
from flagsvc.storage.models import FlagEarlyAdopters
from flagsvc.storage.redis import redis_client

log = logging.getLogger(__name__)

STANDARD_ERROR = hyperloglog.STANDARD_ERROR
"""Relative standard error of a distinct count (Redis's and ours: 0.81 %)."""
MAX_ADOPTERS_PER_ENTRY = 10_000
"""Most hashed user keys one metrics entry may carry (the SDK sends no more)."""
_TABLE = FlagEarlyAdopters.metadata.tables[FlagEarlyAdopters.__tablename__]


@dataclass(frozen=True, slots=True)
class EarlyAccessReport:
    """One flag in one batch: evaluations on through early access, hashed user keys."""

    flag_id: int
    evaluations: int
    adopters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Evidence:
    """A flag's early-adopter evidence in one environment."""

    early_adopters: int
    """Distinct users reached through early access (approximate: :data:`STANDARD_ERROR`)."""
    early_access_evaluations: int
    """Evaluations answered on through an early-access cohort, all time."""


NONE = Evidence(0, 0)


class Sketches:
    """Where distinct early adopters are counted: Redis when configured, else the database."""

    def __init__(self, redis_url: str | None = None) -> None:
        self._redis = redis_client(redis_url) if redis_url else None

    @property
    def shared(self) -> bool:
        """True when the sketches live in Redis."""
        return self._redis is not None

    def add(
        self, session: Session, environment_id: int, hashes: Mapping[int, Sequence[str]]
    ) -> None:
        """Add each flag's hashed user keys to its sketch in ``environment_id``."""
        wanted = {flag_id: keys for flag_id, keys in hashes.items() if keys}
        if not wanted:
            return
        if self._redis is None:
            _add_to_rows(session, environment_id, wanted)
            return
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for flag_id, keys in sorted(wanted.items()):
                    pipe.pfadd(_redis_key(environment_id, flag_id), *keys)
                pipe.execute()
        except redis.RedisError as error:
            log.warning("early adopters not counted (Redis: %s)", error)

    def count(
        self, session: Session, environment_id: int, flag_ids: Sequence[int]
    ) -> dict[int, int]:
        """Per flag id: its distinct early adopters in ``environment_id`` (absent: none)."""
        if not flag_ids:
            return {}
        if self._redis is None:
            return _count_rows(session, environment_id, flag_ids)
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for flag_id in flag_ids:
                    pipe.pfcount(_redis_key(environment_id, flag_id))
                counts = pipe.execute()
        except redis.RedisError as error:
            log.warning("early adopters unknown (Redis: %s)", error)
            return {}
        return {flag_id: int(n) for flag_id, n in zip(flag_ids, counts, strict=True) if n}


def record(
    session: Session,
    environment_id: int,
    reports: Iterable[EarlyAccessReport],
    sketches: Sketches,
) -> None:
    """Add one batch's early-access evaluations and adopters (flag-id order, one row each)."""
    evaluations: dict[int, int] = {}
    hashes: dict[int, list[str]] = {}
    for report in reports:
        evaluations[report.flag_id] = evaluations.get(report.flag_id, 0) + report.evaluations
        hashes.setdefault(report.flag_id, []).extend(report.adopters)
    rows = [
        {"flag_id": f, "environment_id": environment_id, "early_access_evaluations": n}
        for f, n in sorted(evaluations.items())
        if n or hashes.get(f)
    ]
    if rows:
        session.execute(_upsert(session, rows))
    sketches.add(session, environment_id, hashes)


def evidence(
    session: Session, environment_id: int, flag_ids: Sequence[int], sketches: Sketches | None
) -> dict[int, Evidence]:
    """Per flag id: its evidence in ``environment_id`` (flags without reports: :data:`NONE`;
    ``sketches`` None: distinct early adopters not counted, 0)."""
    totals = dict(
        session.execute(
            select(FlagEarlyAdopters.flag_id, FlagEarlyAdopters.early_access_evaluations).where(
                FlagEarlyAdopters.environment_id == environment_id,
                FlagEarlyAdopters.flag_id.in_(flag_ids),
            )
        ).all()
    )
    reported = [f for f in flag_ids if f in totals]
    seen = {} if sketches is None else sketches.count(session, environment_id, reported)
    return {f: Evidence(seen.get(f, 0), int(totals.get(f, 0))) for f in flag_ids}


def _redis_key(environment_id: int, flag_id: int) -> str:
    return f"flagsvc:early-adopters:{environment_id}:{flag_id}"


def _add_to_rows(
    session: Session, environment_id: int, hashes: Mapping[int, Sequence[str]]
) -> None:
    """Merge into the database sketches, each row locked (PostgreSQL) while it changes."""
    rows = session.scalars(
        select(FlagEarlyAdopters)
        .where(
            FlagEarlyAdopters.environment_id == environment_id,
            FlagEarlyAdopters.flag_id.in_(sorted(hashes)),
        )
        .order_by(FlagEarlyAdopters.flag_id)
        .with_for_update()
    ).all()
    for row in rows:
        registers = bytearray(row.sketch) if row.sketch else hyperloglog.empty()
        if hyperloglog.add(registers, hashes[row.flag_id]) or row.sketch is None:
            row.sketch = bytes(registers)


def _count_rows(session: Session, environment_id: int, flag_ids: Sequence[int]) -> dict[int, int]:
    rows = session.execute(
        select(FlagEarlyAdopters.flag_id, FlagEarlyAdopters.sketch).where(
            FlagEarlyAdopters.environment_id == environment_id,
            FlagEarlyAdopters.flag_id.in_(flag_ids),
            FlagEarlyAdopters.sketch.is_not(None),
        )
    )
    return {flag_id: hyperloglog.count(sketch) for flag_id, sketch in rows if sketch is not None}


def _upsert(session: Session, rows: list[dict[str, Any]]) -> Any:
    """``INSERT … ON CONFLICT DO UPDATE`` adding to the early-access evaluations."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_TABLE).values(rows)
    old = _TABLE.c
    return stmt.on_conflict_do_update(
        index_elements=[old.flag_id, old.environment_id],
        set_={
            "early_access_evaluations": old.early_access_evaluations
            + stmt.excluded.early_access_evaluations
        },
    )
