"""The attack on the audit: someone who can write its table rewrites event 1,000 onwards
with flagsvc's own code, so that ``verify`` still says valid.

Without an audit key it works: a plain SHA-256 chain is recomputed by anyone. With
``FLAGSVC_AUDIT_KEY`` (the attacker has the database, not the key) verification names
the first rewritten event; against a head kept outside the database the rewrite shows
even without a key.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from flagsvc import create_app
from flagsvc.domain.actions import Action
from flagsvc.services import audit
from flagsvc.services import audit_verification
from flagsvc.services.audit_verification import KeptHead
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.state import AppState
from tests.tamper import around_triggers

KEY = "audit-key-" + "k" * 40
REWRITE_FROM = 1_000
EVENTS = 1_020


def _state(app: Flask) -> AppState:
    return app.extensions["flagsvc"]  # type: ignore[no-any-return]


def _write_history(app: Flask, up_to: int) -> None:
    """Ordinary events until the log holds ``up_to`` (one transaction: quick)."""
    state = _state(app)
    with state.db.write() as session:
        change = Change(SYSTEM, state.clock(), "history")
        while audit.chain_head(session).seq < up_to:
            subject = audit.Subject("flag", f"f-{uuid.uuid4().hex[:6]}", flag_key="checkout")
            audit.record(session, change, Action.FLAG_KILLED, subject, None, {"killed": True})


def _rewrite_from(app: Flask, seq: int) -> None:
    """The attacker: the same database, flagsvc's own code, no audit key.

    Removes event ``seq`` onwards (the triggers switched off, as a table owner can) and
    writes a history of their choosing in its place, chained and hashed by ``audit.record``.
    """
    url = _state(app).config.database_url
    attacker = create_app({"database_url": url, "testing": True, "redis_url": None})
    state = _state(attacker)
    with state.db.write() as session:
        around_triggers(session)
        removed = session.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": seq})
        change = Change(SYSTEM, state.clock(), "innocent")
        for _ in range(removed.rowcount):
            subject = audit.Subject("flag", "checkout", flag_key="checkout")
            audit.record(session, change, Action.FLAG_RESUMED, subject, None, {"killed": False})
    state.close()


def _full_verify(app: Flask) -> Any:
    state = _state(app)
    return audit_verification.verify(state.db, state.audit_keys, state.clock(), full=True)


def test_without_a_key__the_rewrite_verifies_valid__unless_checked_against_a_kept_head(app):
    _write_history(app, EVENTS)
    with _state(app).db.read() as session:
        head = audit.chain_head(session)
    _rewrite_from(app, REWRITE_FROM)
    assert _full_verify(app).valid  # the hole: the chain alone cannot tell
    with _state(app).db.read() as session:
        kept = KeptHead(head.seq, head.hash[:13])  # as the metric carries it
        report = audit_verification.verify_against(session, _state(app).audit_keys, kept)
    assert not report.valid and "no longer has the hash" in (report.reason or "")


@pytest.mark.parametrize("app_config", [{"audit_keys": (KEY,)}])
def test_with_the_key__the_rewrite_is_named_at_its_first_event(app):
    _write_history(app, EVENTS)
    assert _full_verify(app).valid
    _rewrite_from(app, REWRITE_FROM)
    report = _full_verify(app)
    assert not report.valid and report.first_broken_seq == REWRITE_FROM
    assert report.verified_seq == REWRITE_FROM - 1


@pytest.mark.parametrize("app_config", [{"audit_keys": (KEY,)}])
def test_with_the_key__rewriting_the_whole_log_plain__broken(app):
    _write_history(app, 20)
    _rewrite_from(app, 1)
    report = _full_verify(app)
    assert not report.valid and "no event is sealed" in (report.reason or "")


@pytest.mark.parametrize("app_config", [{"audit_keys": (KEY,)}])
def test_with_the_key__a_forged_checkpoint_is_reported_not_trusted(app):
    _write_history(app, 20)
    state = _state(app)
    assert audit_verification.verify(state.db, state.audit_keys, state.clock()).valid
    _rewrite_from(app, 10)
    with state.db.write() as session:  # move the checkpoint past the rewrite
        head = audit.chain_head(session)
        session.execute(
            text("UPDATE audit_checkpoints SET seq = :s, hash = :h"),
            {"s": head.seq, "h": head.hash},
        )
    report = audit_verification.verify(state.db, state.audit_keys, state.clock())
    assert not report.valid and "checkpoint was altered" in (report.reason or "")
