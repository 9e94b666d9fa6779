"""Incremental builds equal full builds, and a change re-reads only what it touched."""

from __future__ import annotations

import random
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy import update

from flagsvc.delivery import parts
from flagsvc.delivery.parts import SnapshotBuilder
from flagsvc.delivery.snapshots import build_snapshot
from flagsvc.delivery.snapshots import encode_snapshot
from flagsvc.domain.errors import DomainError
from flagsvc.domain.roles import Role
from flagsvc.domain.stages import Stage
from flagsvc.services import cohorts
from flagsvc.services import flag_states
from flagsvc.services import flags
from flagsvc.services.context import Change
from flagsvc.storage.db import Database
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import CohortMemberChange
from tests.services.use_cases import ChangeBy
from tests.services.use_cases import new_flag

ENVIRONMENTS = ("development", "staging", "production")
FLAGS = [f"f{n}" for n in range(6)]
COHORTS = [f"c{n}" for n in range(5)]
USERS = [f"u{n}" for n in range(8)]


def assert_same_as_full(database: Database, builder: SnapshotBuilder) -> None:
    """Every environment's incremental build is the full build, to the byte."""
    for environment in ENVIRONMENTS:
        with database.read() as session:
            encoded, wire = builder.build(session, environment, None)
            full = build_snapshot(session, environment)
        assert wire == full, environment
        assert encoded.body == encode_snapshot(full, None).body, environment


Step = Callable[[Any, Change, random.Random], None]


def _where(rng: random.Random) -> flag_states.Where:
    return flag_states.Where(rng.choice(FLAGS), rng.choice(ENVIRONMENTS))


def _move(session: Any, change: Change, rng: random.Random) -> None:
    stage = rng.choice(list(Stage))
    percent = Decimal(rng.choice([0, 10, 50, 100])) if stage is Stage.GENERAL else None
    flag_states.move_stage(session, change, _where(rng), stage, percent)


def _kill(session: Any, change: Change, rng: random.Random) -> None:
    flag_states.set_killed(session, change, _where(rng), rng.random() < 0.5)


def _attach(session: Any, change: Change, rng: random.Random) -> None:
    chosen = rng.sample(COHORTS, rng.randint(0, 3))
    flag_states.set_cohorts(session, change, _where(rng), chosen)


def _exclude(session: Any, change: Change, rng: random.Random) -> None:
    flag_states.set_exclusions(session, change, _where(rng), rng.sample(USERS, rng.randint(0, 3)))


def _members(session: Any, change: Change, rng: random.Random) -> None:
    add, remove = rng.sample(USERS, rng.randint(0, 3)), rng.sample(USERS, rng.randint(0, 2))
    cohorts.change_members(session, change, rng.choice(COHORTS), add, remove)


def _edit_cohort(session: Any, change: Change, rng: random.Random) -> None:
    fields = rng.choice(
        [{"opt_in": rng.random() < 0.5}, {"name": f"n{rng.randint(0, 9)}"}, {"description": "d"}]
    )
    cohorts.update_cohort(session, change, rng.choice(COHORTS), fields)


def _delete_cohort(session: Any, change: Change, rng: random.Random) -> None:
    cohorts.delete_cohort(session, change, rng.choice(COHORTS))


def _recreate_cohort(session: Any, change: Change, rng: random.Random) -> None:
    key = rng.choice(COHORTS)
    cohorts.create_cohort(session, change, cohorts.CohortSpec(key, key.upper()))


def _archive(session: Any, change: Change, rng: random.Random) -> None:
    key = rng.choice(FLAGS)
    if rng.random() < 0.5:
        flags.archive_flag(session, change, key)
    else:
        flags.unarchive_flag(session, change, key)


def _rename_flag(session: Any, change: Change, rng: random.Random) -> None:
    flags.update_flag(session, change, rng.choice(FLAGS), {"name": f"F{rng.randint(0, 99)}"})


STEPS: list[Step] = [
    _move,
    _move,
    _kill,
    _attach,
    _attach,
    _exclude,
    _members,
    _members,
    _edit_cohort,
    _delete_cohort,
    _recreate_cohort,
    _archive,
    _rename_flag,
]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_changes__incremental_build__equals_full_build(
    database: Database, change_by: ChangeBy, key_result_id: int, seed: int
) -> None:
    rng = random.Random(seed)
    change = change_by(Role.ADMIN)
    for key in FLAGS[:4]:
        new_flag(database, change, key, key_result_id)
    with database.write() as session:
        for key in COHORTS:
            cohorts.create_cohort(session, change, cohorts.CohortSpec(key, key.upper()))
    builder = SnapshotBuilder()
    assert_same_as_full(database, builder)
    for n in range(60):
        step = rng.choice(STEPS)
        try:
            with database.write() as session:
                step(session, change, rng)
        except DomainError:
            pass  # refused (the gate, a cohort in use, ...): nothing written
        if n == 20:
            for key in FLAGS[4:]:  # flags created after the first builds
                new_flag(database, change, key, key_result_id)
        if n % 3 == 0:
            assert_same_as_full(database, builder)
    assert_same_as_full(database, builder)
    assert builder.stats["incremental"] > 0


@contextmanager
def counted_statements(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = database.read_engine
    target = engine if database.is_sqlite else database.write_engine
    event.listen(target, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(target, "before_cursor_execute", count)


def test_change_in_another_environment__nothing_reread(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    change = change_by(Role.ADMIN)
    new_flag(database, change, "f0", key_result_id)
    builder = SnapshotBuilder()
    with database.read() as session:
        before, _ = builder.build(session, "production", None)
    with database.write() as session:
        where = flag_states.Where("f0", "staging")
        flag_states.move_stage(session, change, where, Stage.EARLY_ACCESS, None)
    with counted_statements(database) as statements, database.read() as session:
        after, _ = builder.build(session, "production", before)
    assert after is not before and after.version == before.version
    assert builder.stats["nothing"] == 1 and builder.stats["full"] == 1
    reads = _selects(statements)
    assert len(reads) == 1, reads  # the head and the events since: no flag, no cohort
    assert not [s for s in reads if "flag_states" in s or "cohort" in s]


def _development_on_cohorts(database: Database, change: Change, key_result_id: int) -> None:
    with database.write() as session:
        for key in COHORTS:
            cohorts.create_cohort(session, change, cohorts.CohortSpec(key, key.upper()))
    for key in FLAGS:
        new_flag(database, change, key, key_result_id)
        with database.write() as session:
            where = flag_states.Where(key, "development")
            flag_states.set_cohorts(session, change, where, COHORTS[:3])


def _held(
    database: Database, change: Change, key_result_id: int, members: Sequence[str] = ()
) -> SnapshotBuilder:
    """Development on three cohorts (``members`` in c1), built once: the next build
    starts from what this one holds."""
    _development_on_cohorts(database, change, key_result_id)
    if members:
        with database.write() as session:
            cohorts.change_members(session, change, "c1", members, [])
    builder = SnapshotBuilder()
    with database.read() as session:
        builder.build(session, "development", None)
    return builder


_MANY = [f"old-{n:03d}" for n in range(300)]


def test_members_added_and_removed__no_member_reread(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    """The audit event names the members (up to its sample): nothing else is read."""
    change = change_by(Role.ADMIN)
    builder = _held(database, change, key_result_id, ["old", "older"])
    with database.write() as session:
        cohorts.change_members(session, change, "c1", ["newcomer"], ["old"])
    with counted_statements(database) as statements, database.read() as session:
        _, wire = builder.build(session, "development", None)
    assert wire["cohorts"]["c1"]["members"] == ["newcomer", "older"]
    reads = _selects(statements)
    assert len(reads) == 1, reads  # the head and the events, with their members
    assert (builder.stats["flags"], builder.stats["cohorts"]) == (0, 0)
    assert builder.stats["members"] == 2
    assert_same_as_full(database, builder)


def test_bulk_member_change__keys_from_the_journal__no_member_reread(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    """More members than the event's sample: the journal names the rest, one statement."""
    change = change_by(Role.ADMIN)
    builder = _held(database, change, key_result_id, _MANY)
    added, removed = [f"new-{n:03d}" for n in range(30)], [f"old-{n:03d}" for n in range(25)]
    with database.write() as session:
        cohorts.change_members(session, change, "c1", added, removed)
    with counted_statements(database) as statements, database.read() as session:
        _, wire = builder.build(session, "development", None)
    members = wire["cohorts"]["c1"]["members"]
    assert len(members) == 305 and (members.added, members.removed) == (added, removed)
    reads = _selects(statements)
    assert len(reads) == 2, reads  # the events; the journal's keys for them
    assert not [s for s in reads if "cohort_members" in s], reads
    assert (builder.stats["cohorts"], builder.stats["members"]) == (0, 55)
    assert_same_as_full(database, builder)


def test_bulk_member_change__keys_no_longer_journalled__cohort_read_whole(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    change = change_by(Role.ADMIN)
    builder = _held(database, change, key_result_id, _MANY)
    with database.write() as session:
        cohorts.change_members(session, change, "c1", [f"new-{n:03d}" for n in range(30)], [])
        session.execute(delete(CohortMemberChange))  # as the journal drops old events' keys
    with database.read() as session:
        builder.build(session, "development", None)
    assert (builder.stats["cohorts"], builder.stats["members"]) == (1, 0)
    assert_same_as_full(database, builder)


def test_bulk_member_change__most_of_the_cohort__read_whole(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    """Applying key by key costs what reading costs per member: past a share, read."""
    change = change_by(Role.ADMIN)
    builder = _held(database, change, key_result_id, _MANY)
    with database.write() as session:
        cohorts.change_members(session, change, "c1", [], [f"old-{n:03d}" for n in range(100)])
    with database.read() as session:
        builder.build(session, "development", None)
    assert (builder.stats["cohorts"], builder.stats["members"]) == (1, 0)
    assert_same_as_full(database, builder)


def test_one_flag_changed__two_statements(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    """The events, then the flag's state with its cohort list and exclusions."""
    change = change_by(Role.ADMIN)
    builder = _held(database, change, key_result_id)
    with database.write() as session:
        flag_states.set_killed(session, change, flag_states.Where("f1", "development"), True)
    with counted_statements(database) as statements, database.read() as session:
        _, wire = builder.build(session, "development", None)
    assert wire["flags"]["f1"]["killed"] is True
    reads = _selects(statements)
    assert len(reads) == 2, reads
    assert_same_as_full(database, builder)


def test_cohort_rules_edited__members_not_reread(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    change = change_by(Role.ADMIN)
    builder = _held(database, change, key_result_id, ["a", "b"])
    with database.write() as session:
        cohorts.update_cohort(session, change, "c1", {"opt_in": True})
    with counted_statements(database) as statements, database.read() as session:
        _, wire = builder.build(session, "development", None)
    assert wire["cohorts"]["c1"]["opt_in"] is True
    assert not [s for s in statements if "cohort_members" in s], statements
    assert_same_as_full(database, builder)


def _member_step(session: Any, change: Change, rng: random.Random, pool: list[str]) -> None:
    """Members added and removed, a few (named in the event) or many (more than its
    sample), some already there or not there at all."""
    many = rng.random() < 0.15
    add = rng.sample(pool, rng.randint(21, 60) if many else rng.randint(0, 3))
    left = [key for key in pool if key not in add]
    remove = rng.sample(left, rng.randint(21, 60) if many else rng.randint(0, 3))
    cohorts.change_members(session, change, rng.choice(COHORTS[:2]), add, remove)


def _opt_in_step(session: Any, change: Change, rng: random.Random, pool: list[str]) -> None:
    membership = cohorts.Membership("c2", rng.choice(pool), "development")
    if rng.random() < 0.5:
        cohorts.enroll(session, change, membership)
    else:
        cohorts.leave(session, change, membership)


@pytest.mark.parametrize("seed", [1, 2])
def test_member_changes_at_scale__incremental_build__equals_full_build(
    database: Database,
    change_by: ChangeBy,
    key_result_id: int,
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of members kept in small chunks: every change lands in the right chunk
    (splits, emptied chunks, the ends) and the body is still the full build's."""
    monkeypatch.setattr(parts.cohort, "CHUNK", 16)
    rng = random.Random(seed)
    change = change_by(Role.ADMIN)
    _development_on_cohorts(database, change, key_result_id)
    with database.write() as session:
        cohorts.update_cohort(session, change, "c2", {"opt_in": True})
        flag_states.set_cohorts(session, change, flag_states.Where("f0", "development"), COHORTS)
    pool = [f"user-{n:05d}" for n in range(0, 3000, 3)] + ["a", "zz", "é", "\u00e9x", "Z"]
    with database.write() as session:
        for key in COHORTS[:3]:
            cohorts.change_members(session, change, key, rng.sample(pool, 400), [])
    builder = SnapshotBuilder()
    assert_same_as_full(database, builder)
    for n in range(40):
        with database.write() as session:
            if rng.random() < 0.3:
                _opt_in_step(session, change, rng, pool)
            else:
                _member_step(session, change, rng, pool)
        if n % 4 == 0:
            assert_same_as_full(database, builder)
    assert_same_as_full(database, builder)
    assert builder.stats["members"] > 0 and builder.stats["full"] == len(ENVIRONMENTS)


def test_full_every__forces_a_full_build(database: Database) -> None:
    now = [0.0]
    builder = SnapshotBuilder(full_every=10, clock=lambda: now[0])
    with database.read() as session:
        builder.build(session, "production", None)
        now[0] = 11
        builder.build(session, "production", None)
    assert builder.stats["full"] == 2


def _by_hand(database: Database, cohort: str, user_key: str, *, counted: bool) -> None:
    """A member inserted in SQL, no audit event (the count set too when ``counted``)."""
    with database.write() as session:
        cohort_id = session.scalar(select(Cohort.id).where(Cohort.key == cohort))
        session.add(
            CohortMember(
                cohort_id=cohort_id, user_key=user_key, source="sql", added_at=datetime.now(UTC)
            )
        )
        if counted:
            session.execute(
                update(Cohort)
                .where(Cohort.id == cohort_id)
                .values(member_count=Cohort.member_count + 1)
            )


def test_periodic_full_build__members_still_counted__kept_not_reread(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    change = change_by(Role.ADMIN)
    _development_on_cohorts(database, change, key_result_id)
    with database.write() as session:
        cohorts.change_members(session, change, "c1", ["a", "b"], [])
    now = [0.0]
    builder = SnapshotBuilder(full_every=10, clock=lambda: now[0])
    with database.read() as session:
        builder.build(session, "development", None)
    with database.write() as session:  # a rules edit and a member, as audited changes
        cohorts.update_cohort(session, change, "c0", {"opt_in": True})
        cohorts.change_members(session, change, "c1", ["c"], [])
    now[0] = 11
    with counted_statements(database) as statements, database.read() as session:
        builder.build(session, "development", None)
    assert builder.stats["full"] == 2 and builder.stats["kept"] == 3
    assert not [s for s in statements if "cohort_members" in s], statements
    assert_same_as_full(database, builder)


def test_periodic_full_build__members_changed_by_hand__served(
    database: Database, change_by: ChangeBy, key_result_id: int
) -> None:
    """A hand edit that sets the count is served by the next periodic build; one that
    does not, by the next whole read of every member list."""
    change = change_by(Role.ADMIN)
    _development_on_cohorts(database, change, key_result_id)
    now = [0.0]
    builder = SnapshotBuilder(full_every=10, clock=lambda: now[0], members_every=100)
    with database.read() as session:
        builder.build(session, "development", None)
    _by_hand(database, "c1", "counted", counted=True)
    now[0] = 11
    assert_same_as_full(database, builder)
    assert builder.stats["kept"] == 2  # c0 and c2: c1's count moved
    _by_hand(database, "c2", "uncounted", counted=False)
    now[0] = 22
    with database.read() as session:
        _, wire = builder.build(session, "development", None)
    assert "uncounted" not in wire["cohorts"]["c2"]["members"]  # the count is the witness
    now[0] = 101
    assert_same_as_full(database, builder)


def _selects(statements: list[str]) -> list[str]:
    """The reads among the statements a build ran."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]
