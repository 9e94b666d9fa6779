"""Encoded snapshots shared between instances through Redis, so N instances build once."""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.exceptions import RedisError

from flagsvc.delivery.patches import MAX_STEPS
from flagsvc.delivery.patches import Step
from flagsvc.delivery.snapshots import EncodedSnapshot
from flagsvc.storage.redis import RedisCircuit

_PUT_IF_NEWER = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'head') or '-1')
if stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'head', ARGV[1], 'version', ARGV[2], 'hash', ARGV[3], 'body', ARGV[4])
return 1
"""


_GET_IF_NEWER = """
local head = tonumber(redis.call('HGET', KEYS[1], 'head') or '-1')
if head < tonumber(ARGV[1]) then return false end
return redis.call('HMGET', KEYS[1], 'head', 'version', 'hash', 'body')
"""


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
        self._get_if_newer = client.register_script(_GET_IF_NEWER)

    @staticmethod
    def key(environment: str) -> str:
        """The Redis key of an environment's snapshot."""
        return f"flagsvc:snapshot:{environment}"

    def get(self, environment: str, at_least: int = 0) -> EncodedSnapshot | None:
        """The shared snapshot, or None (absent, malformed, Redis down, or current for a
        head below ``at_least``: then its body, 14 MB with a million-member cohort, is
        not even sent)."""
        key = self.key(environment)
        if at_least > 0:
            fields = self._call("read", lambda: self._get_if_newer(keys=[key], args=[at_least]))
        else:
            fields = self._call("read", lambda: self.client.hmget(key, *_FIELDS))
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

    def push_step(self, environment: str, step: Step) -> None:
        """Share the step from one version to the next (its builder's), the newest
        ``MAX_STEPS`` kept: another instance, or this one after a restart, can then
        answer a patch from a version it never held (``SnapshotCache.patch_since``)."""
        key = f"{self.key(environment)}:steps"
        record = b"%d %s %d %s\n" % (
            step.from_version,
            step.from_hash.encode(),
            step.to_version,
            step.to_hash.encode(),
        )

        def push() -> Any:
            pipe = self.client.pipeline(transaction=False)
            pipe.rpush(key, record + step.body)
            pipe.ltrim(key, -MAX_STEPS, -1)
            return pipe.execute()

        self._call("write", push)

    def steps(self, environment: str) -> list[Step]:
        """The shared steps, oldest first (empty while Redis is unreachable); a malformed
        record is skipped."""
        records = self._call(
            "read", lambda: self.client.lrange(f"{self.key(environment)}:steps", 0, -1)
        )
        steps = []
        for record in records or ():
            header, _, body = record.partition(b"\n")
            try:
                start, start_hash, end, end_hash = header.decode().split(" ")
                steps.append(Step(int(start), start_hash, int(end), end_hash, body))
            except (ValueError, UnicodeDecodeError):
                continue
        return steps

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
            shared = self.get(environment, at_least=head)
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
