"""A member change to a 1,000,000-member cohort: the service call, the build, the patch step.

    .venv/bin/python bench/member_changes.py [--members 1000000] [--bulk 1000] [--rounds 7]

A fresh PostgreSQL database (``BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/flagsvc_bench_members``; dropped and created,
then ``flagsvc init``) holds a flag in early access in production on a cohort of
``--members`` members (seeded in SQL, the kept count set as an import sets it). Per
round, medians over ``--rounds``, with the baseline measured in the same round:

- **change_members, one key added**: the service call in its transaction, vs the
  ``count(*)`` of the cohort's members it ran twice per call before the count was kept
  (for the add's lookup strategy, and for its answer);
- **the bulk call** itself, and the journal's share of it: the same number of keys
  journalled in a transaction of their own, less an empty write transaction's time;
- **build after a bulk change** of ``--bulk`` keys (60 % added, 40 % removed: more than
  the audit event's sample of 20): production's incremental build applying the keys from
  the member journal, vs the same build with the journal's rows for that change deleted,
  which re-reads the whole cohort (what every bulk change of more than 20 keys cost);
  and, as the floor, the build after the one-key change (what any change to that cohort
  costs: the body's hash and join);
- **periodic full build** (what ``FULL_EVERY_SECONDS`` forces on the first change after
  10 minutes), after the one-key change: member lists kept where the cohort's kept count
  agrees, vs every list re-read (``members_every=0``: what it did before);
- **patch step** (``delivery.patches.diff_wires``) from the version before to each of
  those two builds: taken from the build's account vs found by comparing the lists.

The load average is printed with the figures: the machine is shared; compare ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from flagsvc.delivery.parts import SnapshotBuilder
from flagsvc.delivery.patches import diff_wires
from flagsvc.delivery.snapshots import build_snapshot
from flagsvc.domain.stages import Stage
from flagsvc.services import cohorts
from flagsvc.services import flag_states
from flagsvc.services import flags
from flagsvc.services import member_journal
from flagsvc.services import okrs
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.storage import models as m
from flagsvc.storage.db import Database

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/flagsvc_bench_members"
)
COHORT, FLAG = "big", "big-flag"


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def fresh_database() -> str:
    server, name = DATABASE_URL.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://{DATABASE_URL.split('://', 1)[1]}"
    env = {**os.environ, "DATABASE_URL": url}
    flagsvc = [sys.executable, "-c", "from flagsvc.cli import main; main()"]
    subprocess.run([*flagsvc, "init"], env=env, check=True, capture_output=True)
    return url


def change() -> Change:
    return Change(SYSTEM, datetime.now(UTC), "bench")


def seed(database: Database, members: int) -> None:
    """The flag in early access in production on the cohort of ``members``."""
    with database.write() as session:
        objective = okrs.create_objective(
            session, change(), {"title": "O", "period": "2026-Q4", "owner": "o"}
        )
        fields = {"title": "K", "metric": "m", "baseline": 0, "target": 1, "unit": "u"}
        result = okrs.create_key_result(session, change(), objective.id, fields)
        flags.create_flag(
            session,
            change(),
            {"key": FLAG, "name": "F", "flow_item": "feature", "key_result_id": result.id},
        )
        cohorts.create_cohort(session, change(), cohorts.CohortSpec(COHORT, "Big"))
    with database.write() as session:
        session.execute(
            text(
                "insert into cohort_members (cohort_id, user_key, source, added_at) "
                "select c.id, 'user-' || lpad(n::text, 7, '0'), 'import', now() "
                "from cohorts c, generate_series(1, :n) n where c.key = :key"
            ),
            {"n": members, "key": COHORT},
        )
        session.execute(
            text("update cohorts set member_count = :n where key = :key"),
            {"n": members, "key": COHORT},
        )
    with database.write() as session:
        where = flag_states.Where(FLAG, "production")
        flag_states.set_cohorts(session, change(), where, [COHORT])
        flag_states.move_stage(session, change(), where, Stage.EARLY_ACCESS, None)
    with database.write() as session:
        session.execute(text("analyze"))


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def one_key(database: Database, index: int) -> tuple[float, float]:
    """Seconds for change_members adding one key, and for one count(*) of the cohort."""

    def add() -> None:
        with database.write() as session:
            cohorts.change_members(session, change(), COHORT, [f"late-{index:05d}"], [])

    def count() -> int:
        with database.read() as session:
            cohort = session.scalar(select(m.Cohort.id).where(m.Cohort.key == COHORT))
            stmt = select(func.count()).where(m.CohortMember.cohort_id == cohort)
            return session.scalar(stmt) or 0

    return timed(add)[0], timed(count)[0]


def bulk(database: Database, index: int, size: int) -> int:
    """A bulk change of ``size`` keys (60 % new, 40 % removed); its removal's audit seq."""
    added = [f"bulk-{index:03d}-{n:05d}" for n in range(size * 6 // 10)]
    removed = [f"user-{index * size + n + 1:07d}" for n in range(size - len(added))]
    with database.write() as session:
        cohorts.change_members(session, change(), COHORT, added, removed)
    return len(added) + len(removed)


def empty_write(database: Database) -> float:
    """Seconds for a write transaction that writes nothing (begin, commit)."""

    def nothing() -> None:
        with database.write() as session:
            session.execute(text("select 1"))

    return timed(nothing)[0]


def journal_write(database: Database, index: int, size: int) -> float:
    """Seconds to journal ``size`` keys in a transaction of their own (under a ``seq`` no
    event has, removed again), less an empty write transaction's: the journal's share of
    a bulk call."""
    keys = [f"journal-{n:05d}" for n in range(size)]

    def write() -> None:
        with database.write() as session:
            member_journal.record(session, -1 - index, keys)

    seconds = timed(write)[0] - empty_write(database)
    with database.write() as session:
        session.execute(delete(m.CohortMemberChange).where(m.CohortMemberChange.seq < 0))
    return seconds


def build(builder: SnapshotBuilder, database: Database) -> tuple[float, dict[str, Any]]:
    with database.read() as session:
        seconds, (_, wire) = timed(lambda: builder.build(session, "production", None))
    return seconds, wire


def round_(
    database: Database, builders: dict[str, SnapshotBuilder], index: int, size: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["add one"], figures["count(*)"] = one_key(database, index)
    figures["periodic kept"] = build(builders["periodic"], database)[0]
    figures["periodic whole"] = build(builders["reread"], database)[0]
    figures["build one key"], journal_before = build(builders["journal"], database)
    before = {"journal": journal_before, "whole": build(builders["whole"], database)[1]}
    figures["bulk call"] = timed(lambda: bulk(database, index, size))[0]
    figures["journal write"] = journal_write(database, index, size)
    figures["build journal"], journal_wire = build(builders["journal"], database)
    build(builders["periodic"], database)  # it applies the journal too (not timed)
    with database.write() as session:
        session.execute(delete(m.CohortMemberChange))  # the baseline: keys not kept
    figures["build whole"], whole_wire = build(builders["whole"], database)
    figures["patch journal"], step = timed(lambda: diff_wires(before["journal"], journal_wire))
    figures["patch whole"], other = timed(lambda: diff_wires(before["whole"], whole_wire))
    assert step["members_added"] == other["members_added"], "the two steps differ"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--bulk", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    database = Database(fresh_database())
    print(f"load average {loadavg()}: seeding {args.members:,} members")
    seed(database, args.members)
    builders = {
        "journal": SnapshotBuilder(),
        "whole": SnapshotBuilder(),
        "periodic": SnapshotBuilder(full_every=0),  # every build is the periodic one
        "reread": SnapshotBuilder(full_every=0, members_every=0),  # ... as it was
    }
    for builder in builders.values():
        build(builder, database)
    samples: dict[str, list[float]] = {}
    for index in range(args.rounds):
        for name, value in round_(database, builders, index, args.bulk).items():
            samples.setdefault(name, []).append(value)
    with database.read() as session:
        assert build(builders["journal"], database)[1] == build_snapshot(session, "production")
    assert builders["journal"].stats["cohorts"] == 0, "the journal build re-read the cohort"
    assert builders["periodic"].stats["kept"] >= args.rounds, "the periodic build re-read"
    report(samples, args)
    database.dispose()


def report(samples: dict[str, list[float]], args: argparse.Namespace) -> None:
    ms = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"load average {loadavg()}; {args.members:,} members, medians of {args.rounds} rounds")
    print(f"change_members, one key added:     {ms['add one']:8.1f} ms")
    print(
        f"  baseline: count(*) of the cohort {ms['count(*)']:8.1f} ms (paid twice per call before)"
    )
    print(
        f"  before ~ {ms['add one'] + 2 * ms['count(*)']:.1f} ms; now / before "
        f"{ms['add one'] / (ms['add one'] + 2 * ms['count(*)']):.2f}"
    )
    print(f"bulk change_members call of {args.bulk:,} keys: {ms['bulk call']:8.1f} ms")
    print(
        f"  of which the journal's keys:    {ms['journal write']:8.1f} ms"
        f" (alone, less an empty transaction: {ms['journal write'] / ms['bulk call']:.0%})"
    )
    print(f"build after a bulk change of {args.bulk:,} keys:")
    print(f"  from the journal                 {ms['build journal']:8.1f} ms")
    print(f"  floor: the build after one key   {ms['build one key']:8.1f} ms (hash, body)")
    print(
        f"  baseline: cohort re-read whole   {ms['build whole']:8.1f} ms"
        f"  ({ms['build whole'] / ms['build journal']:.0f}x)"
    )
    print("periodic full build (every 10 minutes, on a change), after the one-key change:")
    print(f"  member lists kept (counts agree) {ms['periodic kept']:8.1f} ms")
    print(
        f"  baseline: every list re-read     {ms['periodic whole']:8.1f} ms"
        f"  ({ms['periodic whole'] / ms['periodic kept']:.0f}x)"
    )
    print("patch step for that change:")
    print(f"  from the build's account         {ms['patch journal']:8.1f} ms")
    print(
        f"  baseline: lists compared         {ms['patch whole']:8.1f} ms"
        f"  ({ms['patch whole'] / max(ms['patch journal'], 1e-3):.0f}x)"
    )


if __name__ == "__main__":
    main()
