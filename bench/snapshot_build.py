"""Building one environment's SDK snapshot: the service's build vs the ORM build it replaced.

    .venv/bin/python bench/snapshot_build.py [--flags 200 5000] [--rounds 15]

For each size, a fresh PostgreSQL database (``flagsvc_bench_build`` on
``BENCH_PG_SERVER``, default ``postgresql://postgres@127.0.0.1:5432``; dropped and
created) is migrated and seeded with that many flags, each live in production (stage
``general`` at 50 %) with its own 10-member cohort, so 200 flags means 200 cohorts.
Then, in interleaved rounds (the order flips every round):

- **service**: ``flagsvc.delivery.snapshots.build_snapshot`` (Core queries);
- **ORM (baseline)**: the build as it was before issue 12, kept below verbatim in
  spirit: ``FlagState`` rows through the ORM (each joining its flag, each flag loading
  its readiness items), cohorts by a list of ids.

Each figure is the median over ``--rounds`` of one build (queries and dict building; no
serialisation), and ``encode`` is ``encode_snapshot`` (sorted JSON + SHA-256) once.
Both builds must produce the same snapshot, checked first. The load average is printed
with the figures: the machine is shared; compare ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from flagsvc.delivery.snapshots import SPEC_VERSION
from flagsvc.delivery.snapshots import audit_head
from flagsvc.delivery.snapshots import build_snapshot
from flagsvc.delivery.snapshots import encode_snapshot
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import to_percent
from flagsvc.services.environments import get_environment
from flagsvc.storage import models as m
from flagsvc.storage.db import Database

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "flagsvc_bench_build"
MEMBERS = 10


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def fresh_database() -> str:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = f"postgresql+psycopg://{PG_SERVER.split('://', 1)[1]}/{DATABASE}"
    env = {**os.environ, "DATABASE_URL": url}
    flagsvc = [sys.executable, "-c", "from flagsvc.cli import main; main()"]
    subprocess.run([*flagsvc, "init"], env=env, check=True, capture_output=True)
    return url


def seed(database: Database, flags: int) -> None:
    """``flags`` flags live in production at 50 %, each with its own 10-member cohort."""
    now = datetime.now(UTC)
    with database.write() as session:
        production = get_environment(session, "production").id
        objective = session.execute(
            insert(m.Objective).returning(m.Objective.id),
            [{"title": "O", "period": "2026-Q4", "owner": "o", "created_at": now, "version": 1}],
        ).scalar_one()
        key_result = session.execute(
            insert(m.KeyResult).returning(m.KeyResult.id),
            [
                {
                    "objective_id": objective,
                    "title": "K",
                    "metric": "m",
                    "baseline": 0,
                    "target": 1,
                    "current": 0,
                    "unit": "u",
                    "created_at": now,
                    "version": 1,
                }
            ],
        ).scalar_one()
        flag_ids = session.scalars(
            insert(m.Flag).returning(m.Flag.id, sort_by_parameter_order=True),
            [
                {
                    "key": f"flag-{n:05d}",
                    "name": "F",
                    "flow_item": "feature",
                    "key_result_id": key_result,
                    "salt": f"salt{n}",
                    "created_at": now,
                    "version": 1,
                }
                for n in range(flags)
            ],
        ).all()
        cohort_ids = session.scalars(
            insert(m.Cohort).returning(m.Cohort.id, sort_by_parameter_order=True),
            [
                {
                    "key": f"cohort-{n:05d}",
                    "name": "C",
                    "rules": [],
                    "opt_in": False,
                    "created_at": now,
                    "version": 1,
                }
                for n in range(flags)
            ],
        ).all()
        session.execute(
            insert(m.CohortMember),
            [
                {"cohort_id": c, "user_key": f"user-{n}-{i}", "source": "list", "added_at": now}
                for n, c in enumerate(cohort_ids)
                for i in range(MEMBERS)
            ],
        )
        state_ids = session.scalars(
            insert(m.FlagState).returning(m.FlagState.id, sort_by_parameter_order=True),
            [
                {
                    "flag_id": f,
                    "environment_id": production,
                    "stage": Stage.GENERAL.value,
                    "rollout_basis_points": 5000,
                    "killed": False,
                    "updated_at": now,
                    "version": 1,
                }
                for f in flag_ids
            ],
        ).all()
        session.execute(
            insert(m.FlagStateCohort),
            [
                {"flag_state_id": s, "cohort_id": c, "position": 0, "variation": None}
                for s, c in zip(state_ids, cohort_ids, strict=True)
            ],
        )


# --- the baseline: the ORM build as it was before issue 12 ----------------------------


def orm_build(session: Session, environment_key: str) -> dict[str, Any]:
    environment = get_environment(session, environment_key)
    version = audit_head(session)
    states = session.scalars(
        select(m.FlagState)
        .where(
            m.FlagState.environment_id == environment.id,
            m.FlagState.stage != Stage.RETIRED.value,
        )
        .order_by(m.FlagState.id)
    ).all()
    cohort_keys, own = _orm_cohort_keys(session, [s.id for s in states])
    exclusions = _orm_exclusions(session, [s.id for s in states])
    flags = {}
    for s in states:
        flag = s.flag
        wire = {
            "key": flag.key,
            "salt": flag.salt,
            "stage": s.stage,
            "rollout_percent": float(to_percent(s.rollout_basis_points)),
            "killed": s.killed,
            "cohorts": cohort_keys[s.id],
            "exclusions": exclusions[s.id],
            "type": flag.value_type,
            "variations": {v["key"]: v["value"] for v in flag.variations},
            "on": flag.on_variation,
            "off": flag.off_variation,
            "key_result": flag.key_result_id,
            "flow_item": flag.flow_item,
        }
        if own[s.id]:
            wire["cohort_variations"] = own[s.id]
        flags[flag.key] = wire
    used = {key for keys in cohort_keys.values() for key in keys}
    return {
        "spec_version": SPEC_VERSION,
        "environment": environment.key,
        "version": version,
        "flags": flags,
        "cohorts": _orm_cohorts(session, used),
    }


def _orm_cohort_keys(
    session: Session, state_ids: Iterable[int]
) -> tuple[dict[int, list[str]], dict[int, dict[str, str]]]:
    rows = session.execute(
        select(m.FlagStateCohort.flag_state_id, m.Cohort.key, m.FlagStateCohort.variation)
        .join(m.Cohort, m.Cohort.id == m.FlagStateCohort.cohort_id)
        .where(m.FlagStateCohort.flag_state_id.in_(list(state_ids)))
        .order_by(m.FlagStateCohort.flag_state_id, m.FlagStateCohort.position)
    )
    grouped: dict[int, list[str]] = defaultdict(list)
    own: dict[int, dict[str, str]] = defaultdict(dict)
    for state_id, key, variation in rows:
        grouped[state_id].append(key)
        if variation is not None:
            own[state_id][key] = variation
    return grouped, own


def _orm_exclusions(session: Session, state_ids: Iterable[int]) -> dict[int, list[str]]:
    rows = session.execute(
        select(m.FlagExclusion.flag_state_id, m.FlagExclusion.user_key)
        .where(m.FlagExclusion.flag_state_id.in_(list(state_ids)))
        .order_by(m.FlagExclusion.flag_state_id, m.FlagExclusion.user_key)
    )
    grouped: dict[int, list[str]] = defaultdict(list)
    for state_id, user_key in rows:
        grouped[state_id].append(user_key)
    return grouped


def _orm_cohorts(session: Session, keys: set[str]) -> dict[str, Any]:
    if not keys:
        return {}
    cohorts = session.scalars(select(m.Cohort).where(m.Cohort.key.in_(sorted(keys)))).all()
    members: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(
        select(m.CohortMember.cohort_id, m.CohortMember.user_key)
        .where(m.CohortMember.cohort_id.in_([c.id for c in cohorts]))
        .order_by(m.CohortMember.cohort_id, m.CohortMember.user_key)
    )
    for cohort_id, user_key in rows:
        members[cohort_id].append(user_key)
    return {
        c.key: {"key": c.key, "members": members[c.id], "rules": c.rules, "opt_in": c.opt_in}
        for c in cohorts
    }


# --- the run ------------------------------------------------------------------------


def timed(database: Database, build: Callable[[Session, str], dict[str, Any]]) -> float:
    with database.read() as session:
        started = time.perf_counter()
        build(session, "production")
        return time.perf_counter() - started


def measure(flags: int, rounds: int) -> None:
    database = Database(fresh_database())
    seed(database, flags)
    with database.write_engine.connect() as conn:  # what autovacuum would do by now
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    with database.read() as session:
        service, orm = build_snapshot(session, "production"), orm_build(session, "production")
        count = session.scalar(select(func.count()).select_from(m.CohortMember))
    assert service == orm, "the two builds disagree"
    assert len(service["flags"]) == flags and len(service["cohorts"]) == flags
    times: dict[str, list[float]] = {"service": [], "orm": []}
    builds = {"service": build_snapshot, "orm": orm_build}
    for n in range(rounds):
        order = ["service", "orm"] if n % 2 == 0 else ["orm", "service"]
        for name in order:
            times[name].append(timed(database, builds[name]))
    started = time.perf_counter()
    encode_snapshot(service, None)
    encode = time.perf_counter() - started
    ours, base = statistics.median(times["service"]), statistics.median(times["orm"])
    print(
        f"{flags} flags, {flags} cohorts ({count} members), load {loadavg()}: "
        f"build {ours * 1000:.1f} ms (ORM baseline {base * 1000:.1f} ms, "
        f"{base / ours:.1f}x faster); encode {encode * 1000:.1f} ms",
        flush=True,
    )
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    for flags in args.flags:
        measure(flags, args.rounds)


if __name__ == "__main__":
    main()
