"""The hash chain's rules with and without audit keys (pure: no database)."""

from __future__ import annotations

from flagsvc.domain.audit_chain import GENESIS_HASH
from flagsvc.domain.audit_chain import START
from flagsvc.domain.audit_chain import AuditKeys
from flagsvc.domain.audit_chain import ChainedEvent
from flagsvc.domain.audit_chain import ChainPoint
from flagsvc.domain.audit_chain import event_hash
from flagsvc.domain.audit_chain import key_id
from flagsvc.domain.audit_chain import verify

OLD, NEW = b"o" * 32, b"n" * 32


def chain(*keys: bytes | None, start: ChainPoint = START) -> list[ChainedEvent]:
    """One event per entry of ``keys``: plain (None) or sealed with that key."""
    events, prev = [], start.hash
    for seq, key in enumerate(keys, start=start.seq + 1):
        content = {"seq": seq, "action": "flag.created", **({"key_id": key_id(key)} if key else {})}
        digest = event_hash(prev, content, key)
        events.append(ChainedEvent(seq, prev, digest, content, key_id(key) if key else None))
        prev = digest
    return events


def forged(event: ChainedEvent, **content: object) -> ChainedEvent:
    """``event`` rewritten by someone without the key: plain SHA-256 over new content."""
    changed = {k: v for k, v in {**event.content, **content}.items() if k != "key_id"}
    return ChainedEvent(event.seq, event.prev_hash, event_hash(event.prev_hash, changed), changed)


def test_plain_chain__verifies_without_keys_and_anyone_can_rehash_it():
    events = chain(None, None, None)
    assert verify(events).valid
    assert verify([*events[:2], forged(events[2], action="flag.killed")]).valid  # the weakness


def test_plain_events_then_sealed__valid_and_the_seal_covers_the_plain_past():
    events = chain(None, None, NEW, NEW)
    assert verify(events, AuditKeys((NEW,))).valid
    altered = forged(events[1], action="flag.killed")  # a plain event, validly rehashed
    report = verify([events[0], altered, *events[2:]], AuditKeys((NEW,)))
    assert not report.valid and report.first_broken_seq == 3  # its prev_hash no longer links


def test_sealed_event_rewritten_without_the_key__broken_there():
    events = chain(NEW, NEW, NEW)
    report = verify([*events[:1], forged(events[1]), *events[2:]], AuditKeys((NEW,)))
    assert not report.valid and report.first_broken_seq == 2
    assert "not sealed" in (report.reason or "")


def test_whole_log_rewritten_plain__broken_when_keys_are_configured():
    report = verify(chain(None, None), AuditKeys((NEW,)))
    assert not report.valid and "no event is sealed" in (report.reason or "")
    assert verify([], AuditKeys((NEW,))).valid  # nothing written yet: nothing to doubt


def test_key_changed__old_events_verify_only_while_the_old_key_is_listed():
    events = chain(OLD, OLD, NEW)
    assert verify(events, AuditKeys((NEW, OLD))).valid
    report = verify(events, AuditKeys((NEW,)))
    assert not report.valid and report.first_broken_seq == 1
    assert key_id(OLD) in (report.reason or "")


def test_sealed_with_a_wrong_key__broken():
    events = chain(NEW, b"m" * 32)
    report = verify(events, AuditKeys((NEW,)))
    assert not report.valid and report.first_broken_seq == 2


def test_from_a_checkpoint__walks_only_what_follows_and_keeps_it_sealed():
    head = chain(NEW, NEW)
    point = ChainPoint(2, head[-1].hash, sealed=True)
    later = chain(NEW, start=point)
    report = verify(later, AuditKeys((NEW,)), point)
    assert report.valid and report.events_checked == 1 and report.verified_from == 2
    assert not verify([forged(later[0])], AuditKeys((NEW,)), point).valid


def test_limit__stops_early_and_says_so():
    report = verify(chain(None, None, None), limit=2)
    assert report.valid and not report.complete and report.verified_seq == 2


def test_key_id__a_fingerprint_not_the_key():
    assert len(key_id(NEW)) == 16 and key_id(NEW) != key_id(OLD)
    assert NEW.hex()[:16] != key_id(NEW) and GENESIS_HASH[:16] != key_id(NEW)
