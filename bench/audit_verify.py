"""What audit verification costs: the whole chain (admins) against the incremental check
(readers), plain SHA-256 against HMAC-sealed events.

    .venv/bin/python bench/audit_verify.py            # --events 100000 --added 1000
    .venv/bin/python bench/audit_verify.py --database-url postgresql+psycopg://…/flagsvc_bench

Builds a migrated database (a temporary SQLite file unless ``--database-url`` names one
the bench may empty) holding ``--events`` events, hashed exactly as ``audit.record``
hashes them, once plain and once sealed with a key. Then, in the same run: the full
verification (the baseline: what any viewer could start with one call before), readers'
incremental checks from no checkpoint until one is complete (each call recomputes at
most ``INCREMENTAL_LIMIT`` events), and one reader's check after ``--added`` more events
(what a call costs from then on). Prints CPU seconds, microseconds per event, and the
ratio of each to the full check.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy import text

from flagsvc.domain import audit_chain
from flagsvc.domain.audit_chain import AuditKeys
from flagsvc.services import audit
from flagsvc.services import audit_verification
from flagsvc.storage import migrate
from flagsvc.storage.db import Database
from flagsvc.storage.models import AuditEvent

KEY = AuditKeys((b"bench-audit-key-" + b"k" * 32,))
BATCH = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--added", type=int, default=1_000)
    parser.add_argument("--database-url", help="a database the bench may empty (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'audit.db'}"
        for label, keys in (("plain SHA-256", audit_chain.NO_KEYS), ("sealed (HMAC)", KEY)):
            _run(url, label, keys, args.events, args.added)


def _run(url: str, label: str, keys: AuditKeys, events: int, added: int) -> None:
    database = _fresh(url)
    started = time.perf_counter()
    _append(database, keys, events)
    print(f"\n{label}: {events:,} events written in {time.perf_counter() - started:.1f} s")
    at = datetime.now(UTC)
    full, full_cpu = _timed(lambda: audit_verification.verify(database, keys, at, full=True))
    _clear_checkpoint(database)
    calls, catch_up_cpu, slowest = _catch_up(database, keys, at)
    _append(database, keys, added)
    later, later_cpu = _timed(lambda: audit_verification.verify(database, keys, at))
    print(_line("full (admins; anyone before)", full, full_cpu, full_cpu))
    print(
        f"  {'readers catching up, no checkpoint':36} {calls:>9,} calls  {catch_up_cpu:8.3f} s CPU "
        f"in all, the slowest call {slowest:.3f} s ({slowest / full_cpu:.4f}× the full check)"
    )
    print(_line(f"a reader's check after {added:,} more", later, later_cpu, full_cpu))
    database.dispose()


def _catch_up(database: Database, keys: AuditKeys, at: datetime) -> tuple[int, float, float]:
    """Readers' checks from no checkpoint until one is complete: calls, CPU, slowest call."""
    calls, total, slowest = 0, 0.0, 0.0
    while True:
        report, cpu = _timed(lambda: audit_verification.verify(database, keys, at))
        calls, total, slowest = calls + 1, total + cpu, max(slowest, cpu)
        if report.complete or not report.valid:
            return calls, total, slowest


def _line(what: str, report: Any, cpu: float, baseline: float) -> str:
    per = cpu / max(report.events_checked, 1) * 1e6
    ratio = cpu / baseline if baseline else 0.0
    return (
        f"  {what:36} {report.events_checked:>9,} events {cpu:8.3f} s CPU "
        f"({per:5.1f} µs/event)  {ratio:7.4f}× the full check  valid={report.valid}"
    )


def _timed(check: Callable[[], Any]) -> tuple[Any, float]:
    started = time.process_time()
    report = check()
    return report, time.process_time() - started


def _fresh(url: str) -> Database:
    migrate.downgrade(url, "base") if _migrated(url) else None
    migrate.upgrade(url)
    return Database(url)


def _migrated(url: str) -> bool:
    database = Database(url)
    try:
        with database.read() as session:
            session.execute(text("SELECT 1 FROM alembic_version"))
        return True
    except Exception:
        return False
    finally:
        database.dispose()


def _append(database: Database, keys: AuditKeys, count: int) -> None:
    """``count`` events after the head, hashed as ``audit.record`` does, inserted in bulk."""
    with database.read() as session:
        head = audit.chain_head(session)
    seq, prev = head.seq, head.hash
    start = datetime(2026, 1, 1, tzinfo=UTC)
    while count > 0:
        rows = []
        for _ in range(min(count, BATCH)):
            seq += 1
            row = _row(seq, prev, start + timedelta(seconds=seq), keys)
            rows.append(row)
            prev = row["hash"]
        with database.write() as session:
            session.execute(insert(AuditEvent), rows)
        count -= len(rows)


def _row(seq: int, prev: str, at: datetime, keys: AuditKeys) -> dict[str, Any]:
    event = AuditEvent(
        seq=seq, occurred_at=at, actor="dana", actor_role="engineer", action="flag.killed",
        entity_type="flag", entity_key=f"flag-{seq % 500}", flag_key=f"flag-{seq % 500}",
        environment="production", before={"killed": False}, after={"killed": True},
        request_id=f"bench-{seq}", prev_hash=prev, key_id=keys.current_id,
    )  # fmt: skip
    event.hash = audit_chain.event_hash(prev, audit.chained_content(event), keys.current)
    return {column.key: getattr(event, column.key) for column in AuditEvent.__table__.columns}


def _clear_checkpoint(database: Database) -> None:
    with database.write() as session:
        session.execute(text("DELETE FROM audit_checkpoints"))


if __name__ == "__main__":
    main()
