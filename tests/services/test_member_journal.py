"""The member count kept with every change, and the journal of bulk member changes."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from flagsvc.delivery.parts.events import MAX_EVENTS
from flagsvc.domain.roles import Role
from flagsvc.services import cohorts
from flagsvc.services import flag_states
from flagsvc.services import member_journal
from flagsvc.storage.db import Database
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import CohortMemberChange
from tests.services.use_cases import ChangeBy
from tests.services.use_cases import new_flag


@pytest.fixture
def opt_in(database: Database, change_by: ChangeBy, key_result_id: int) -> str:
    change = change_by(Role.ENGINEER)
    with database.write() as session:
        cohorts.create_cohort(session, change, cohorts.CohortSpec("c", "C", opt_in=True))
    new_flag(database, change, "f", key_result_id)
    with database.write() as session:
        flag_states.set_cohorts(session, change, flag_states.Where("f", "production"), ["c"])
    return "c"


def _counted(database: Database) -> tuple[int, int, int]:
    """The kept count, the real count and the cohort's version."""
    with database.read() as session:
        row = session.execute(select(Cohort.member_count, Cohort.version)).one()
        real = session.scalar(select(func.count()).select_from(CohortMember)) or 0
    return row.member_count, real, row.version


def test_member_count__every_kind_of_change__kept_exact_version_unchanged(
    database: Database, change_by: ChangeBy, opt_in: str
) -> None:
    change = change_by(Role.ENGINEER)
    _, _, version = _counted(database)
    keys = [f"u{n}" for n in range(50)]
    with database.write() as session:
        result = cohorts.change_members(session, change, opt_in, keys, [])
    assert result.member_count == 50 and _counted(database) == (50, 50, version)
    with database.write() as session:
        result = cohorts.change_members(session, change, opt_in, ["u1", "new"], keys[10:])
    assert result.member_count == 11 and _counted(database) == (11, 11, version)
    sdk = change_by(Role.ADMIN)
    with database.write() as session:
        assert cohorts.enroll(session, sdk, cohorts.Membership(opt_in, "x", "production"))
        assert cohorts.leave(session, sdk, cohorts.Membership(opt_in, "u1", "production"))
        assert not cohorts.leave(session, sdk, cohorts.Membership(opt_in, "u1", "production"))
    assert _counted(database) == (11, 11, version)
    with database.read() as session:
        assert cohorts.member_counts(session, [1, 999]) == {1: 11}


def _journal(database: Database) -> dict[int, set[str]]:
    with database.read() as session:
        rows = session.execute(select(CohortMemberChange.seq, CohortMemberChange.user_key))
        found: dict[int, set[str]] = {}
        for seq, user_key in rows:
            found.setdefault(seq, set()).add(user_key)
    return found


def _last_seq(database: Database) -> int:
    with database.read() as session:
        return session.scalar(select(func.max(AuditEvent.seq))) or 0


def test_journal__bulk_changes_beyond_the_sample__every_key_under_the_event(
    database: Database, change_by: ChangeBy, opt_in: str
) -> None:
    change = change_by(Role.ENGINEER)
    many = [f"u{n}" for n in range(cohorts.AUDIT_SAMPLE + 5)]
    with database.write() as session:
        cohorts.change_members(session, change, opt_in, many, [])
    added = _last_seq(database)
    with database.write() as session:
        cohorts.change_members(session, change, opt_in, ["few"], many[:3])  # within samples
    assert _journal(database) == {added: set(many)}


def test_journal__old_events_keys__dropped_with_the_next_bulk_change(
    database: Database, change_by: ChangeBy, opt_in: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(member_journal, "KEPT_EVENTS", 3)
    change = change_by(Role.ENGINEER)
    first = [f"a{n}" for n in range(30)]
    with database.write() as session:
        cohorts.change_members(session, change, opt_in, first, [])
    old = _last_seq(database)
    with database.write() as session:
        cohorts.update_cohort(session, change, opt_in, {"name": "C2"})
        cohorts.update_cohort(session, change, opt_in, {"name": "C3"})
        cohorts.change_members(session, change, opt_in, [f"b{n}" for n in range(30)], [])
    assert old not in _journal(database) and len(_journal(database)) == 1


def test_journal__kept_longer_than_a_build_reads_events() -> None:
    assert member_journal.KEPT_EVENTS > MAX_EVENTS
