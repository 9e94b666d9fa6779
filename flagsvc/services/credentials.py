"""Admin tokens and SDK keys: random secrets, stored only as SHA-256 hashes.

The secrets are 256-bit random, so a fast hash is enough (no password stretching is
needed for values nobody can guess); the plain value is returned once, at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.roles import Role
from flagsvc.services import audit
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.services.environments import get_environment
from flagsvc.storage.models import ApiToken
from flagsvc.storage.models import SdkKey

TOKEN_PREFIX = "fst_"
SDK_KEY_PREFIX = "fss_"


def hash_secret(secret: str) -> str:
    """The stored form of a token or SDK key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, change: Change, name: str, role: Role) -> tuple[ApiToken, str]:
    """Create an admin-API token; return the row and the plain token (shown once)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=role.value,
        token_hash=hash_secret(secret),
        prefix=secret[:10],
        created_at=change.at,
    )
    session.add(token)
    session.flush()
    subject = audit.Subject("token", str(token.id))
    audit.record(session, change, "token.created", subject, None, token_summary(token))
    return token, secret


def list_tokens(session: Session) -> Sequence[ApiToken]:
    """All tokens, newest first (hashes never leave the service)."""
    return session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).all()


def revoke_token(session: Session, change: Change, token_id: int) -> ApiToken:
    """Revoke a token; a revoked token authenticates nothing."""
    token = session.get(ApiToken, token_id, with_for_update=True)
    if token is None:
        raise NotFoundError("token", token_id)
    if token.revoked_at is None:
        before = token_summary(token)
        token.revoked_at = change.at
        audit.record(
            session,
            change,
            "token.revoked",
            audit.Subject("token", str(token.id)),
            before,
            token_summary(token),
        )
    return token


def token_summary(token: ApiToken) -> dict[str, object]:
    """The audit's view of a token (never the hash)."""
    revoked = token.revoked_at.isoformat() if token.revoked_at else None
    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "prefix": token.prefix,
        "revoked_at": revoked,
    }


def create_sdk_key(session: Session, change: Change, environment_key: str) -> tuple[SdkKey, str]:
    """Create an SDK key for one environment; return the row and the plain key."""
    environment = get_environment(session, environment_key)
    secret = f"{SDK_KEY_PREFIX}{environment.key[:12]}_{secrets.token_urlsafe(32)}"
    key = SdkKey(
        environment_id=environment.id,
        key_hash=hash_secret(secret),
        prefix=secret[:16],
        created_at=change.at,
    )
    session.add(key)
    session.flush()
    subject = audit.Subject("sdk_key", str(key.id), environment=environment.key)
    audit.record(
        session, change, "sdk_key.created", subject, None, {"id": key.id, "prefix": key.prefix}
    )
    return key, secret


def authenticate(session: Session, secret: str) -> Actor | None:
    """Find the live token or SDK key behind ``secret``; None if there is none."""
    digest = hash_secret(secret)
    if secret.startswith(SDK_KEY_PREFIX):
        key = session.scalar(
            select(SdkKey).where(SdkKey.key_hash == digest, SdkKey.revoked_at.is_(None))
        )
        if key is None:
            return None
        return Actor(name=f"sdk-key:{key.prefix}", role=None, environment=key.environment.key)
    token = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
    )
    if token is None:
        return None
    return Actor(name=token.name, role=Role(token.role), token_id=token.id)
