"""Verifying the audit chain: from the last verified point, in full, or against a kept head.

Recomputing every hash costs CPU in proportion to the log (``bench/audit_verify.py``),
so a reader's check continues from a **checkpoint**, the newest event the previous
verification found good: it confirms that event still has the hash it had, then walks
only what was added since, at most ``INCREMENTAL_LIMIT`` events per call (the next call
continues where this one stopped). A **full** verification (admins, the CLI) walks from
the first event and also catches edits that left stored hashes alone before the
checkpoint. With audit keys the checkpoint is sealed too (HMAC), so a table writer
cannot move it past a rewrite; an altered checkpoint is reported, not trusted.

A **kept head** is an anchor outside the database (``flagsvc audit head``, the
``flagsvc_audit_head_*`` metrics): the event at that ``seq`` must still exist with that
hash, which catches events removed from the end and any rewrite up to there, key or not.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain import audit_chain
from flagsvc.domain.audit_chain import AuditKeys
from flagsvc.domain.audit_chain import ChainPoint
from flagsvc.domain.audit_chain import ChainReport
from flagsvc.observability import metrics
from flagsvc.services import audit
from flagsvc.storage.db import Database
from flagsvc.storage.models import AuditCheckpoint
from flagsvc.storage.models import AuditEvent

INCREMENTAL_LIMIT = 25_000
"""Events one incremental check recomputes at most: about 1 s of CPU (bench/audit_verify.py)."""
MIN_KEPT_HASH = metrics.HASH_PREFIX_DIGITS
"""Hex digits of a kept hash that must be given (the 52 bits the metric carries)."""
_CHECKPOINT_ID = 1


@dataclass(frozen=True, slots=True)
class KeptHead:
    """An operator's anchor: the event ``seq`` had a hash starting with ``hash_prefix``."""

    seq: int
    hash_prefix: str

    @classmethod
    def parse(cls, text: str) -> KeptHead:
        """``SEQ:HASH`` as ``flagsvc audit head`` prints it (HASH may be cut to 13+ digits).

        :raise ValueError: not in that form.
        """
        seq, _, digest = text.strip().partition(":")
        digest = digest.lower()
        if not seq.isdigit() or len(digest) < MIN_KEPT_HASH or len(digest) > 64:
            raise ValueError(f"expected SEQ:HASH with {MIN_KEPT_HASH}-64 hex digits, got {text!r}")
        int(digest, 16)  # ValueError if not hex
        return cls(int(seq), digest)


def verify(database: Database, keys: AuditKeys, at: datetime, *, full: bool = False) -> ChainReport:
    """Verify from the checkpoint (at most ``INCREMENTAL_LIMIT`` events) or, ``full``, all.

    The newest event found good becomes the checkpoint: a reader's check only moves it
    forward; a full one also moves it back to before a break, or resets an altered one.
    """
    with database.read() as session:
        checkpoint, problem = _checkpoint(session, keys)
        if problem is None and checkpoint is not None:
            problem = _point_problem(session, checkpoint, "verified")
        if full:
            walk = audit.verify(session, keys)
            report = _with_checkpoint_problem(walk, problem)
        elif problem is not None:
            walk = report = ChainReport(False, 0, checkpoint.seq if checkpoint else None, problem)
        else:
            walk = report = audit.verify(
                session, keys, checkpoint or audit_chain.START, INCREMENTAL_LIMIT
            )
        newest = _good_point(session, walk)  # before a break too: the next call starts there
    if newest is not None:
        with database.write() as session:
            _save_checkpoint(session, keys, newest, at, forward_only=not full)
    return report


def verify_against(session: Session, keys: AuditKeys, kept: KeptHead) -> ChainReport:
    """Verify the whole chain, and that it still holds the kept head."""
    report = audit.verify(session, keys)
    problem = _point_problem(session, kept, "kept")
    return _with_checkpoint_problem(report, problem, kept.seq) if problem else report


def _with_checkpoint_problem(
    report: ChainReport, problem: str | None, seq: int | None = None
) -> ChainReport:
    """A valid walk that an anchor contradicts is not valid."""
    if problem is None or not report.valid:
        return report
    return replace(report, valid=False, first_broken_seq=seq, reason=problem)


def _point_problem(session: Session, point: ChainPoint | KeptHead, what: str) -> str | None:
    """Why the event at ``point`` is not what was verified or kept, or None."""
    expected = point.hash if isinstance(point, ChainPoint) else point.hash_prefix
    stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == point.seq))
    if stored is None:
        newest = audit.chain_head(session).seq
        return (
            f"the log ends at event {newest}, but event {point.seq} was {what} before: "
            "events were removed from the end"
        )
    if not stored.startswith(expected):
        return f"event {point.seq} no longer has the hash it had when it was {what}"
    return None


def _good_point(session: Session, report: ChainReport) -> ChainPoint | None:
    """The newest event the report found good, as a checkpoint."""
    if report.verified_seq == 0:
        return None
    row = session.execute(
        select(AuditEvent.hash, AuditEvent.key_id).where(AuditEvent.seq == report.verified_seq)
    ).first()
    if row is None:
        return None
    return ChainPoint(report.verified_seq, row.hash, row.key_id is not None)


def _checkpoint(session: Session, keys: AuditKeys) -> tuple[ChainPoint | None, str | None]:
    """The stored checkpoint if it can be trusted, and why not if it was altered."""
    row = session.get(AuditCheckpoint, _CHECKPOINT_ID)
    if row is None:
        return None, None
    point = ChainPoint(row.seq, row.hash, row.sealed)
    if not keys.keys:
        return point, None
    if not row.seal:  # written before audit keys were set: start again from the first event
        return None, None
    if any(hmac.compare_digest(_seal(key, point), row.seal) for key in keys.keys):
        return point, None
    return None, (
        "the verification checkpoint was altered (its seal does not verify): someone wrote "
        "to the database; an admin's full verification checks everything and resets it"
    )


def _save_checkpoint(
    session: Session, keys: AuditKeys, point: ChainPoint, at: datetime, *, forward_only: bool
) -> None:
    """Store ``point``; ``forward_only``: never behind a concurrent check's newer one."""
    row = session.get(AuditCheckpoint, _CHECKPOINT_ID, with_for_update=True)
    if row is None:
        row = AuditCheckpoint(id=_CHECKPOINT_ID)
        session.add(row)
    elif forward_only and row.seq >= point.seq:
        return
    row.seq, row.hash, row.sealed, row.verified_at = point.seq, point.hash, point.sealed, at
    row.seal = _seal(keys.current, point) if keys.current else ""


def _seal(key: bytes, point: ChainPoint) -> str:
    message = f"checkpoint:{point.seq}:{point.hash}:{int(point.sealed)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
