"""Admin tokens and SDK keys: random secrets, stored only as SHA-256 hashes.

The secrets are 256-bit random, so a fast hash is enough (no password stretching is
needed for values nobody can guess); the plain value is returned once, at creation.

``SdkKeyCache`` keeps SDK-key lookups off the database on the SDK hot path.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import DuplicateKeyError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.roles import Role
from flagsvc.domain.validation import TOKEN_NAME_MAX
from flagsvc.services import audit
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.services.environments import get_environment
from flagsvc.storage.db import UNAVAILABLE_ERRORS
from flagsvc.storage.db import Database
from flagsvc.storage.models import ApiToken
from flagsvc.storage.models import Environment
from flagsvc.storage.models import SdkKey

log = logging.getLogger(__name__)

TOKEN_PREFIX = "fst_"
SDK_KEY_PREFIX = "fss_"
SDK_KEY_PREFIX_RANDOM = 6
"""Random characters an SDK key's shown prefix keeps after ``fss_<environment>_``, so an
operator can tell an environment's keys apart (a leaked key names the one to revoke)."""


def hash_secret(secret: str) -> str:
    """The stored form of a token or SDK key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, change: Change, name: str, role: Role) -> tuple[ApiToken, str]:
    """Create an admin-API token; return the row and the plain token (shown once).

    Names are unique for good, revoked tokens' included: the audit records who acted by
    the token's name, so one name must always mean one token.

    :raise InvalidFieldError: the name is empty or longer than its column.
    :raise DuplicateKeyError: a token (live or revoked) has this name (``field`` ``name``).
    """
    if not 1 <= len(name) <= TOKEN_NAME_MAX:
        raise InvalidFieldError("name", f"must be 1-{TOKEN_NAME_MAX} characters")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise DuplicateKeyError("token", name, field="name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=role.value,
        token_hash=hash_secret(secret),
        prefix=secret[:10],
        created_at=change.at,
    )
    session.add(token)
    try:
        session.flush()
    except IntegrityError as error:  # a racing create of the same name (PostgreSQL)
        raise DuplicateKeyError("token", name, field="name") from error
    subject = audit.Subject("token", str(token.id))
    audit.record(session, change, Action.TOKEN_CREATED, subject, None, token_summary(token))
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
            Action.TOKEN_REVOKED,
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
    scope = f"{SDK_KEY_PREFIX}{environment.key[:12]}_"
    secret = scope + secrets.token_urlsafe(32)
    key = SdkKey(
        environment_id=environment.id,
        key_hash=hash_secret(secret),
        prefix=secret[: len(scope) + SDK_KEY_PREFIX_RANDOM],
        created_at=change.at,
    )
    session.add(key)
    session.flush()
    subject = audit.Subject("sdk_key", str(key.id), environment=environment.key)
    audit.record(session, change, Action.SDK_KEY_CREATED, subject, None, sdk_key_summary(key))
    return key, secret


def list_sdk_keys(session: Session, environment_key: str) -> Sequence[SdkKey]:
    """The environment's SDK keys, revoked ones too, newest first (never their hashes).

    :raise NotFoundError: no such environment.
    """
    environment = get_environment(session, environment_key)
    return session.scalars(
        select(SdkKey).where(SdkKey.environment_id == environment.id).order_by(SdkKey.id.desc())
    ).all()


def revoke_sdk_key(session: Session, change: Change, environment_key: str, key_id: int) -> SdkKey:
    """Revoke one of the environment's SDK keys (idempotent: no event the second time).

    The caller announces the revocation after the commit (``KeyRevocations.announce``),
    so every process stops accepting the key at once instead of after its cache expires.

    :raise NotFoundError: no such environment, or no such key in it.
    """
    environment = get_environment(session, environment_key)
    key = session.get(SdkKey, key_id, with_for_update={"of": SdkKey})  # not the joined env
    if key is None or key.environment_id != environment.id:
        raise NotFoundError("sdk_key", key_id)
    if key.revoked_at is None:
        before = sdk_key_summary(key)
        key.revoked_at = change.at
        subject = audit.Subject("sdk_key", str(key.id), environment=environment.key)
        audit.record(session, change, Action.SDK_KEY_REVOKED, subject, before, sdk_key_summary(key))
    return key


def sdk_key_summary(key: SdkKey) -> dict[str, object]:
    """The audit's view of an SDK key (never the hash; last use is not a change)."""
    revoked = key.revoked_at.isoformat() if key.revoked_at else None
    return {"id": key.id, "prefix": key.prefix, "revoked_at": revoked}


def record_sdk_key_use(session: Session, key_id: int, at: datetime) -> None:
    """Move the key's ``last_used_at`` forward to ``at`` (never back; not audited)."""
    session.execute(
        update(SdkKey)
        .where(SdkKey.id == key_id)
        .where(or_(SdkKey.last_used_at.is_(None), SdkKey.last_used_at < at))
        .values(last_used_at=at)
    )


def note_sdk_key_use(database: Database, key_id: int, at: datetime) -> None:
    """Write the key's ``last_used_at`` in its own transaction.

    A database that cannot take the write never fails the SDK's request: the use is noted
    again a minute later.
    """
    try:
        with database.write() as session:
            record_sdk_key_use(session, key_id, at)
    except UNAVAILABLE_ERRORS as error:
        log.info("could not note the use of SDK key %s: %s", key_id, error)


_LIVE_TOKEN = select(ApiToken.id, ApiToken.name, ApiToken.role).where(
    ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None)
)
"""The live admin token with hash ``:digest``: three columns, not an ``ApiToken`` object,
and built once (every admin request runs it; building it cost 35 µs of CPU a time)."""


def authenticate(session: Session, secret: str) -> Actor | None:
    """Find the live token or SDK key behind ``secret``; None if there is none."""
    digest = hash_secret(secret)
    if secret.startswith(SDK_KEY_PREFIX):
        found = session.execute(
            select(SdkKey.id, SdkKey.prefix, Environment.key)
            .join(Environment, SdkKey.environment_id == Environment.id)
            .where(SdkKey.key_hash == digest, SdkKey.revoked_at.is_(None))
        ).first()
        if found is None:
            return None
        return Actor(
            name=f"sdk-key:{found.prefix}", role=None, environment=found.key, sdk_key_id=found.id
        )
    token = session.execute(_LIVE_TOKEN, {"digest": digest}).first()
    if token is None:
        return None
    return Actor(name=token.name, role=Role(token.role), token_id=token.id)


@dataclass(frozen=True, slots=True)
class _CachedKey:
    actor: Actor
    fresh_until: float
    usable_until: float


class SdkKeyCache:
    """Remembers which environment an SDK key serves, briefly, per process.

    Every SDK request authenticates; a database round trip for it would cost more
    than serving a 304. So a key that authenticated is trusted for ``fresh_seconds``
    (5 s), and while the database is unreachable for up to ``stale_seconds`` more, so
    SDKs keep getting snapshots from the cache during an outage (stale-if-error).
    Unknown keys are never cached: a guess costs a lookup each time (and the rate
    limiter counts it). Admin tokens are not cached at all: revoking one takes effect
    on the next request. A revoked SDK key is ``forget``-ten as soon as the revocation
    is announced (``services.revocations``), on every process; the 5 s (plus the one
    lookup below) only bounds the delay when that announcement is lost.

    When a key's fresh window ends, one request looks it up again; the others asking
    for that key meanwhile (up to ``REFRESH_GRACE_SECONDS``) are answered from the
    entry instead of each running the same lookup: under 50 concurrent polls they
    used to queue for the database together every 5 s.
    """

    REFRESH_GRACE_SECONDS = 1.0
    """How long a lookup in flight lets the others keep the known answer (a lookup
    that hangs longer no longer holds them: they look up themselves)."""

    MAX_KEYS = 10_000

    def __init__(
        self,
        fresh_seconds: float = 5.0,
        stale_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fresh_seconds = fresh_seconds
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._entries: dict[str, _CachedKey] = {}
        self._refreshing: dict[str, float] = {}  # digest -> when its lookup started
        self._revoked: set[int] = set()
        self._guard = threading.Lock()

    def actor(self, secret: str, lookup: Callable[[], Actor | None]) -> Actor | None:
        """The actor behind SDK key ``secret``: cached, or from ``lookup`` (the database).

        :raise: what ``lookup`` raises, unless the database is unreachable and the
            key authenticated within ``stale_seconds``.
        """
        digest = hash_secret(secret)
        entry, now = self._entries.get(digest), self._clock()
        if entry is not None and (now < entry.fresh_until or self._refreshing_since(digest, now)):
            return entry.actor
        self._refreshing[digest] = now
        try:
            actor = lookup()
        except UNAVAILABLE_ERRORS:
            if entry is not None and now < entry.usable_until:
                return entry.actor
            raise
        finally:
            if self._refreshing.get(digest) == now:
                del self._refreshing[digest]
        self._remember(digest, actor, now)
        return actor

    def fresh(self, secret: str) -> Actor | None:
        """The actor behind ``secret`` if cached and fresh (or its lookup is in flight),
        else None (never a lookup)."""
        digest = hash_secret(secret)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        now = self._clock()
        if now < entry.fresh_until or self._refreshing_since(digest, now):
            return entry.actor
        return None

    def _refreshing_since(self, digest: str, now: float) -> bool:
        started = self._refreshing.get(digest)
        return started is not None and now - started < self.REFRESH_GRACE_SECONDS

    def forget(self, key_id: int) -> None:
        """Drop revoked key ``key_id`` and never cache it again.

        Remembered for good (keys are never un-revoked, and they are few): a request
        that looked the key up just before the revocation committed must not put it
        back for another 5 s when it finishes after the announcement.
        """
        with self._guard:
            self._revoked.add(key_id)
            stale = [d for d, e in self._entries.items() if e.actor.sdk_key_id == key_id]
            for digest in stale:
                del self._entries[digest]

    def is_revoked(self, key_id: int | None) -> bool:
        """Whether this process heard that ``key_id`` was revoked."""
        return key_id in self._revoked

    def _remember(self, digest: str, actor: Actor | None, now: float) -> None:
        with self._guard:
            if actor is None or actor.sdk_key_id in self._revoked:
                self._entries.pop(digest, None)
                return
            if len(self._entries) >= self.MAX_KEYS:
                self._entries.clear()  # keys are few; this only bounds a pathological case
            fresh = now + self._fresh_seconds
            self._entries[digest] = _CachedKey(actor, fresh, fresh + self._stale_seconds)


class KeyUseThrottle:
    """Says when an SDK key's use is worth writing down: once per ``every`` seconds.

    ``last_used_at`` is for people ("is this key still in use?"), so minute precision
    is plenty; writing it on every SDK request would turn each 304 into a write.
    Per process: N processes write at most N times a minute per key.
    """

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._next: dict[int, float] = {}
        self._guard = threading.Lock()

    def pending(self, key_id: int) -> bool:
        """Whether ``due`` would answer True now (without taking the turn)."""
        now = self._clock()
        return now >= self._next.get(key_id, now)

    def due(self, key_id: int) -> bool:
        """True at most once per ``every`` seconds for ``key_id`` (the first use included)."""
        now = self._clock()
        with self._guard:
            if now < self._next.get(key_id, now):
                return False
            if len(self._next) >= SdkKeyCache.MAX_KEYS:
                self._next.clear()
            self._next[key_id] = now + self._every
            return True
