"""Building one environment's SDK snapshot after a change: incremental vs full build.

    .venv/bin/python bench/snapshot_build.py [--flags 200 5000] [--rounds 15] [--orm]

For each size, a fresh PostgreSQL database (``flagsvc_bench_build`` on
``BENCH_PG_SERVER``, default ``postgresql://postgres@127.0.0.1:5432``; dropped and
created) is migrated and seeded with that many flags, each live in production (stage
``general`` at 50 %) with its own 10-member cohort, so 200 flags means 200 cohorts.
Then, in rounds, three audited changes each followed by production's build as the
cache does it (``delivery.parts.SnapshotBuilder``: head, events since, the parts they
name, the body joined, SHA-256), timed from the head read to the encoded body:

- **one flag**: one production flag killed or resumed;
- **one member**: one member added to one cohort production uses;
- **staging only**: a flag killed in staging (production re-reads nothing);

and, in the same rounds, a ``SELECT 1`` (the round-trip floor at the machine's load) and
the **full build** as every change cost before (``build_snapshot``'s Core queries +
``encode_snapshot``). ``--orm`` also times the ORM build it replaced (issue 12's first
slice). Figures are medians over ``--rounds``; the
incremental body is checked equal to a full build's at the end. The load average is
printed with the figures: the machine is shared; compare ratios.
"""

from __future__ import annotations

import argparse
import json
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
from flagsvc_sdk.engine import SPEC_VERSION
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from flagsvc.delivery.parts import SnapshotBuilder
from flagsvc.delivery.snapshots import EncodedSnapshot
from flagsvc.delivery.snapshots import audit_head
from flagsvc.delivery.snapshots import build_snapshot
from flagsvc.delivery.snapshots import encode_snapshot
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import to_percent
from flagsvc.services import cohorts
from flagsvc.services import flag_states
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
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
                    "member_count": MEMBERS,
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
        staging = get_environment(session, "staging").id
        session.execute(  # dark in staging: what the "staging only" change touches
            insert(m.FlagState),
            [
                {
                    "flag_id": f,
                    "environment_id": staging,
                    "stage": Stage.OFF.value,
                    "rollout_basis_points": 0,
                    "killed": False,
                    "updated_at": now,
                    "version": 1,
                }
                for f in flag_ids
            ],
        )
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


def timed(database: Database, build: Callable[[Session, str], Any]) -> float:
    with database.read() as session:
        started = time.perf_counter()
        build(session, "production")
        return time.perf_counter() - started


def select_one(session: Session, _environment: str) -> None:
    """The floor: one round trip to the database at the machine's load."""
    session.execute(text("SELECT 1"))


def full_build(session: Session, environment: str) -> EncodedSnapshot:
    """What the cache did on every change before builds were incremental."""
    return encode_snapshot(build_snapshot(session, environment), None)


def changes(database: Database, flags: int) -> dict[str, Callable[[int], None]]:
    """One audited change of each kind the incremental build handles differently."""
    change = Change(SYSTEM, datetime.now(UTC), "bench")

    def kill(n: int) -> None:  # one flag's state in production
        where = flag_states.Where(f"flag-{n % flags:05d}", "production")
        with database.write() as session:
            flag_states.set_killed(session, change, where, n % 2 == 0)

    def member(n: int) -> None:  # one member added to one cohort production uses
        with database.write() as session:
            cohorts.change_members(session, change, f"cohort-{n % flags:05d}", [f"new-{n}"], [])

    def elsewhere(n: int) -> None:  # a change production does not see
        where = flag_states.Where(f"flag-{n % flags:05d}", "staging")
        with database.write() as session:
            flag_states.set_killed(session, change, where, n % 2 == 0)

    return {"one flag": kill, "one member": member, "staging only": elsewhere}


def measure(flags: int, rounds: int, with_orm: bool) -> None:
    database = Database(fresh_database())
    seed(database, flags)
    with database.write_engine.connect() as conn:  # what autovacuum would do by now
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    builder = SnapshotBuilder()
    with database.read() as session:
        service = build_snapshot(session, "production")
        count = session.scalar(select(func.count()).select_from(m.CohortMember))
        if with_orm:
            assert service == orm_build(session, "production"), "the ORM build disagrees"
        previous, _ = builder.build(session, "production", None)
    assert len(service["flags"]) == flags and len(service["cohorts"]) == flags
    times = rounds_of(database, builder, previous, rounds, with_orm)
    with database.read() as session:  # the parts are still exactly the full build
        assert (
            builder.build(session, "production", None)[0].body
            == full_build(session, "production").body
        ), "incremental and full builds disagree"
    full = statistics.median(times["full"])
    trip = statistics.median(times["round trip"])
    figures = [
        f"SELECT 1 round trip {trip * 1000:.1f} ms",
        f"full build + encode {full * 1000:.1f} ms",
    ]
    for name in changes(database, flags):
        median = statistics.median(times[name])
        trips = max(times[f"{name} statements"])
        figures.append(
            f"{name} {median * 1000:.1f} ms, {trips:.0f} statements ({full / median:.0f}x faster)"
        )
    if with_orm:
        figures.append(f"ORM build (no encode) {statistics.median(times['orm']) * 1000:.1f} ms")
    print(
        f"{flags} flags, {flags} cohorts ({count} members), load {loadavg()}, "
        f"{len(previous.body) // 1024} KiB: " + "; ".join(figures),
        flush=True,
    )
    database.dispose()


def rounds_of(
    database: Database,
    builder: SnapshotBuilder,
    previous: EncodedSnapshot,
    rounds: int,
    with_orm: bool,
) -> dict[str, list[float]]:
    """Each round: every kind of change, each followed by a timed incremental build,
    then a timed full build (and the ORM build)."""
    flags = len(json.loads(previous.body)["flags"])
    times: dict[str, list[float]] = defaultdict(list)
    kinds = changes(database, flags)
    statements: list[str] = []
    event.listen(database.write_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for n in range(rounds):
        for name, make in kinds.items():
            make(n)
            with database.read() as session:
                del statements[:]
                started = time.perf_counter()
                previous, _ = builder.build(session, "production", previous)
                times[name].append(time.perf_counter() - started)
                times[f"{name} statements"].append(len(statements))
        times["round trip"].append(
            timed(database, lambda session, _: session.execute(text("SELECT 1")))
        )
        times["full"].append(timed(database, full_build))
        if with_orm:
            times["orm"].append(timed(database, orm_build))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--orm", action="store_true", help="also time the pre-issue-12 ORM build")
    args = parser.parse_args()
    for flags in args.flags:
        measure(flags, args.rounds, args.orm)


if __name__ == "__main__":
    main()
