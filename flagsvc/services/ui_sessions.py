"""Server-side UI sessions: the cookie holds a random id, the database whether it counts.

Flask's session cookie is signed, not stored. On its own, signing out could only ask
the browser to forget it, and a copy taken before (a shared computer, a proxy log,
malware) would keep working until it expired. So the cookie carries a 256-bit random
session id, kept here as its SHA-256 hash like every credential (a database reader
cannot use it). Each UI request loads the session and its token in one query; signing
out deletes the row; revoking the token ends its sessions; a session ends after its
lifetime whatever the cookie says. Expired rows are deleted whenever someone signs in.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.services.credentials import hash_secret
from flagsvc.storage.models import ApiToken
from flagsvc.storage.models import UiSession


def start(session: Session, token_id: int, now: datetime, lifetime: timedelta) -> str:
    """A new session for the token; return its id (for the cookie, never stored plain)."""
    session.execute(delete(UiSession).where(UiSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    session.add(
        UiSession(
            session_hash=hash_secret(session_id),
            token_id=token_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return session_id


def token_of(session: Session, session_id: str, now: datetime) -> ApiToken | None:
    """The live token behind a live session; None once signed out, expired or revoked."""
    return session.scalar(
        select(ApiToken)
        .join(UiSession, UiSession.token_id == ApiToken.id)
        .where(
            UiSession.session_hash == hash_secret(session_id),
            UiSession.expires_at > now,
            ApiToken.revoked_at.is_(None),
        )
    )


def end(session: Session, session_id: str) -> None:
    """Sign the session out: every copy of its cookie stops working."""
    session.execute(delete(UiSession).where(UiSession.session_hash == hash_secret(session_id)))
