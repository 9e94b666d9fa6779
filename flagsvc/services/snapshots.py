"""Build an environment's snapshot: everything the engine needs to evaluate locally.

Every change writes an audit event in its own transaction, so the audit head (the
``seq`` of the newest event) is a change counter: an unchanged head means nothing
changed. A moved head may still leave *this* environment untouched (a change in
another environment), so the wire ``version`` is the head at which the environment's
*content* last changed: ``encode_snapshot`` hashes the content (everything but the
version) and keeps the previous version when the hash is the same. ETags and stream
``change`` events follow that version, so a change in staging neither re-downloads
nor even announces production's snapshot.

The build reads in READ COMMITTED, statement by statement: a change committing
mid-build can leave a snapshot labelled with the older head yet holding part of the
newer change. Its own commit moves the head, so the next build (milliseconds later,
when the stream hears of it) corrects it.

``RedisSnapshotStore`` shares encoded snapshots between instances
(``flagsvc:snapshot:<env>``), so N instances build each version once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

import redis
from flagsvc_sdk.engine import SPEC_VERSION
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.stages import Stage
from flagsvc.domain.stages import to_percent
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagExclusion
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort

log = logging.getLogger(__name__)


_HEAD = select(func.coalesce(func.max(AuditEvent.seq), 0))


def audit_head(session: Session) -> int:
    """The newest audit ``seq`` (0 for an empty log): the change counter.

    Runs on every SDK request, so it skips the ORM's statement handling: a prebuilt
    Core statement on the session's connection (an indexed ``max``, one round trip).
    """
    return session.connection().execute(_HEAD).scalar() or 0


def build_snapshot(session: Session, environment_key: str) -> dict[str, Any]:
    """The wire snapshot of one environment (retired flags are left out).

    Six Core queries and no ORM objects: loading 200 ``FlagState`` rows through the ORM
    (each joining its flag and environment, each flag pulling its readiness items) was
    most of a build. Cohorts, their members and exclusions are selected through the
    environment's states (a join), not through a list of ids sent back.
    """
    environment = session.execute(
        select(Environment.id, Environment.key).where(Environment.key == environment_key)
    ).first()
    if environment is None:
        raise NotFoundError("environment", environment_key)
    version = audit_head(session)
    live = (FlagState.environment_id == environment.id) & (FlagState.stage != Stage.RETIRED.value)
    states = session.execute(
        select(
            FlagState.id,
            Flag.key,
            Flag.salt,
            FlagState.stage,
            FlagState.rollout_basis_points,
            FlagState.killed,
            Flag.value_type,
            Flag.variations,
            Flag.on_variation,
            Flag.off_variation,
            Flag.key_result_id,
            Flag.flow_item,
        )
        .join(Flag, Flag.id == FlagState.flag_id)
        .where(live)
        .order_by(FlagState.id)
    ).all()
    cohort_keys, own = _cohort_keys_by_state(session, live)
    exclusions = _exclusions_by_state(session, live)
    flags = {
        row.key: _flag_wire(row, cohort_keys[row.id], own[row.id], exclusions[row.id])
        for row in states
    }
    return {
        "spec_version": SPEC_VERSION,
        "environment": environment.key,
        "version": version,
        "flags": flags,
        "cohorts": _cohorts_wire(session, live),
    }


def _flag_wire(
    row: Any, cohorts: list[str], own: dict[str, str], exclusions: list[str]
) -> dict[str, Any]:
    wire = {
        "key": row.key,
        "salt": row.salt,
        "stage": row.stage,
        "rollout_percent": float(to_percent(row.rollout_basis_points)),
        "killed": row.killed,
        "cohorts": cohorts,
        "exclusions": exclusions,
        "type": row.value_type,
        "variations": {variation["key"]: variation["value"] for variation in row.variations},
        "on": row.on_variation,
        "off": row.off_variation,
        "key_result": row.key_result_id,
        "flow_item": row.flow_item,
    }
    if own:
        wire["cohort_variations"] = own
    return wire


def _cohort_keys_by_state(
    session: Session, live: Any
) -> tuple[dict[int, list[str]], dict[int, dict[str, str]]]:
    """Per state: its cohorts in order, and those serving their own variation."""
    rows = session.execute(
        select(FlagStateCohort.flag_state_id, Cohort.key, FlagStateCohort.variation)
        .join(Cohort, Cohort.id == FlagStateCohort.cohort_id)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .where(live)
        .order_by(FlagStateCohort.flag_state_id, FlagStateCohort.position)
    )
    grouped: dict[int, list[str]] = defaultdict(list)
    own: dict[int, dict[str, str]] = defaultdict(dict)
    for state_id, key, variation in rows:
        grouped[state_id].append(key)
        if variation is not None:
            own[state_id][key] = variation
    return grouped, own


def _exclusions_by_state(session: Session, live: Any) -> dict[int, list[str]]:
    rows = session.execute(
        select(FlagExclusion.flag_state_id, FlagExclusion.user_key)
        .join(FlagState, FlagState.id == FlagExclusion.flag_state_id)
        .where(live)
        .order_by(FlagExclusion.flag_state_id, FlagExclusion.user_key)
    )
    grouped: dict[int, list[str]] = defaultdict(list)
    for state_id, user_key in rows:
        grouped[state_id].append(user_key)
    return grouped


def _cohorts_wire(session: Session, live: Any) -> dict[str, Any]:
    """The cohorts the environment's live states use, with their members."""
    used = (
        select(FlagStateCohort.cohort_id)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .where(live)
        .distinct()
        .scalar_subquery()
    )
    cohorts = session.execute(
        select(Cohort.id, Cohort.key, Cohort.rules, Cohort.opt_in).where(Cohort.id.in_(used))
    ).all()
    if not cohorts:
        return {}
    members: dict[int, list[str]] = defaultdict(list)
    member_rows = session.execute(
        select(CohortMember.cohort_id, CohortMember.user_key)
        .where(CohortMember.cohort_id.in_(used))
        .order_by(CohortMember.cohort_id, CohortMember.user_key)
    )
    for cohort_id, user_key in member_rows:
        members[cohort_id].append(user_key)
    return {
        c.key: {"key": c.key, "members": members[c.id], "rules": c.rules, "opt_in": c.opt_in}
        for c in cohorts
    }


@dataclass(frozen=True, slots=True)
class EncodedSnapshot:
    """A snapshot serialised once, as served: ``body`` is the wire JSON.

    ``version`` is the content version (what the body says); ``head`` is the newest
    audit head this content is known to be current for.
    """

    environment: str
    version: int
    head: int
    content_hash: str
    body: bytes

    @property
    def etag(self) -> str:
        """The ETag value for ``GET /sdk/v1/snapshot``."""
        return f"{self.environment}.{self.version}"


def encode_snapshot(wire: dict[str, Any], previous: EncodedSnapshot | None) -> EncodedSnapshot:
    """Serialise ``wire`` (built at head ``wire["version"]``) once, reusing ``previous``.

    Keys are sorted so equal content always hashes equally (row order from the
    database is not guaranteed everywhere). Equal content keeps the previous version
    and body: only ``head`` moves.
    """
    head = wire["version"]
    content = {k: v for k, v in wire.items() if k != "version"}
    text = json.dumps(content, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(text).hexdigest()
    if previous is not None and previous.content_hash == digest:
        return replace(previous, head=max(head, previous.head))
    body = b'{"version":%d,' % head + text[1:]
    return EncodedSnapshot(wire["environment"], head, head, digest, body)


_PUT_IF_NEWER = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'head') or '-1')
if stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'head', ARGV[1], 'version', ARGV[2], 'hash', ARGV[3], 'body', ARGV[4])
return 1
"""


class RedisCircuit:
    """Redis reachability for one process: after a failure, skip Redis for a moment.

    Shared by the broker and the snapshot store so an outage is logged once, and a
    request never waits on a dead Redis more than once per ``cooldown``.
    """

    def __init__(self, cooldown: float = 1.0) -> None:
        self.cooldown = cooldown
        self.down = False
        self._retry_at = 0.0

    def available(self) -> bool:
        """Worth trying Redis now."""
        return not self.down or time.monotonic() >= self._retry_at

    def failed(self, what: str, error: Exception) -> None:
        """Record a failure; logs only the first of an outage."""
        if not self.down:
            log.warning("redis unavailable (%s): %s; serving without it", what, error)
        self.down = True
        self._retry_at = time.monotonic() + self.cooldown

    def succeeded(self) -> None:
        """Record a success; logs the end of an outage."""
        if self.down:
            log.warning("redis is back")
        self.down = False


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast (short timeouts, no internal retries): callers fall back."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=2.0,
        socket_keepalive=True,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 0),
    )


class RedisSnapshotStore:
    """Encoded snapshots in Redis, shared by every instance; never required.

    Every call degrades to "not there" while Redis is unreachable (the circuit makes
    that cost one failed attempt per cooldown), so callers build locally instead.
    Writes are compare-and-set on ``head``: a slow builder never overwrites a newer
    snapshot. A build claim (``SET NX`` with expiry) lets one instance build while the
    others wait for its result.
    """

    def __init__(
        self, client: redis.Redis, circuit: RedisCircuit, lock_seconds: float = 10.0
    ) -> None:
        self.client = client
        self.circuit = circuit
        self.lock_seconds = lock_seconds
        self._put = client.register_script(_PUT_IF_NEWER)

    @staticmethod
    def key(environment: str) -> str:
        """The Redis key of an environment's snapshot."""
        return f"flagsvc:snapshot:{environment}"

    def get(self, environment: str) -> EncodedSnapshot | None:
        """The shared snapshot, or None (absent, malformed or Redis down)."""
        fields = self._call("read", lambda: self.client.hmget(self.key(environment), *_FIELDS))
        if not fields or any(f is None for f in fields):
            return None
        head, version, digest, body = fields
        try:
            return EncodedSnapshot(environment, int(version), int(head), digest.decode(), body)
        except (ValueError, UnicodeDecodeError):
            return None

    def put(self, snapshot: EncodedSnapshot) -> None:
        """Share ``snapshot`` unless a newer one is there already."""
        key = self.key(snapshot.environment)
        args: list[str | int | bytes] = [snapshot.head, snapshot.version]
        args += [snapshot.content_hash, snapshot.body]
        self._call("write", lambda: self._put(keys=[key], args=args))

    def claim_build(self, environment: str, head: int) -> bool:
        """True if this caller should build ``head`` (it won the claim, or Redis is down).

        One claim key per head, left to expire: no release round trip, and the next
        version's claim never waits for this one's.
        """
        key = f"{self.key(environment)}:building:{head}"
        expiry = int(self.lock_seconds * 1000)
        claimed = self._call("lock", lambda: self.client.set(key, "1", nx=True, px=expiry))
        return self.circuit.down or bool(claimed)  # SET NX answers None when taken

    def wait_for(self, environment: str, head: int, timeout: float) -> EncodedSnapshot | None:
        """Poll for another instance's build of at least ``head``; None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.circuit.down:
            shared = self.get(environment)
            if shared is not None and shared.head >= head:
                return shared
            time.sleep(0.005)
        return None

    def _call(self, what: str, operation: Any) -> Any:
        if not self.circuit.available():
            return None
        try:
            result = operation()
        except RedisError as error:
            self.circuit.failed(f"snapshot {what}", error)
            return None
        self.circuit.succeeded()
        return result


_FIELDS = ("head", "version", "hash", "body")
