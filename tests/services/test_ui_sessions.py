"""Server-side UI sessions: live until signed out, expired or their token revoked."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from flagsvc.domain.roles import Role
from flagsvc.services import credentials
from flagsvc.services import ui_sessions
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.storage.models import UiSession

LIFETIME = timedelta(hours=12)


def _token(app, clock) -> int:
    with app.extensions["flagsvc"].db.write() as session:
        token, _ = credentials.create_token(
            session, Change(SYSTEM, clock(), "t"), "ann", Role.ADMIN
        )
        return token.id


def test_session__live_until_its_lifetime_whatever_the_cookie(app, clock):
    token_id, db = _token(app, clock), app.extensions["flagsvc"].db
    with db.write() as session:
        session_id = ui_sessions.start(session, token_id, clock(), LIFETIME)
    with db.read() as session:
        assert ui_sessions.token_of(session, session_id, clock() + LIFETIME - timedelta(seconds=1))
        assert ui_sessions.token_of(session, session_id, clock() + LIFETIME) is None
        assert ui_sessions.token_of(session, "not-a-session", clock()) is None


def test_session__token_revoked__ends(app, clock):
    token_id, db = _token(app, clock), app.extensions["flagsvc"].db
    with db.write() as session:
        session_id = ui_sessions.start(session, token_id, clock(), LIFETIME)
        credentials.revoke_token(session, Change(SYSTEM, clock(), "r"), token_id)
    with db.read() as session:
        assert ui_sessions.token_of(session, session_id, clock()) is None


def test_sign_in__expired_sessions_deleted_live_ones_kept(app, clock):
    token_id, db = _token(app, clock), app.extensions["flagsvc"].db
    with db.write() as session:
        old = ui_sessions.start(session, token_id, clock() - LIFETIME, LIFETIME)
        live = ui_sessions.start(session, token_id, clock() - timedelta(hours=1), LIFETIME)
    with db.write() as session:
        ui_sessions.start(session, token_id, clock(), LIFETIME)
    with db.read() as session:
        hashes = set(session.scalars(select(UiSession.session_hash)))
    assert credentials.hash_secret(old) not in hashes
    assert credentials.hash_secret(live) in hashes and len(hashes) == 2
