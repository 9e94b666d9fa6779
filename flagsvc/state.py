"""Per-app runtime state: the database, the clock, the change broker and the snapshot cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

from flagsvc.config import Config
from flagsvc.delivery.broker import ChangeBroker
from flagsvc.delivery.cache import SnapshotCache
from flagsvc.delivery.hangups import HangupWatch
from flagsvc.delivery.stream_slots import StreamSlots
from flagsvc.domain.audit_chain import AuditKeys
from flagsvc.services.auth_failures import AuthFailureLimiter
from flagsvc.services.credentials import KeyUseThrottle
from flagsvc.services.credentials import SdkKeyCache
from flagsvc.services.early_adopters import Sketches
from flagsvc.services.rate_limits import SharedCounter
from flagsvc.services.revocations import KeyRevocations
from flagsvc.storage.db import Database

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


@dataclass(slots=True)
class AppState:
    """What request handlers and CLI commands reach through ``app.extensions``."""

    config: Config
    db: Database
    broker: ChangeBroker
    clock: Clock = system_clock
    snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    sdk_keys: SdkKeyCache = field(default_factory=SdkKeyCache)
    auth_failures: AuthFailureLimiter = field(default_factory=AuthFailureLimiter)
    sdk_key_use: KeyUseThrottle = field(default_factory=KeyUseThrottle)
    revocations: KeyRevocations = field(init=False)
    enrollments: SharedCounter = field(init=False)
    streams: StreamSlots = field(init=False)
    hangups: HangupWatch = field(default_factory=HangupWatch)
    early_adopters: Sketches = field(init=False)

    @property
    def audit_keys(self) -> AuditKeys:
        """``FLAGSVC_AUDIT_KEY``: the current key seals new events, every key verifies."""
        return AuditKeys.from_secrets(self.config.audit_keys)

    def close(self) -> None:
        """Stop change delivery and the background watches, then close the pooled
        connections, in that order.

        A delivery thread still reading the head or preparing a snapshot holds a pooled
        connection: disposed of under it, that connection outlives its pool unclosed.
        So the broker's threads are stopped and waited for first. The revocation
        listener and the hang-up sweep end within their next wait (a second at most):
        left running, each closed state kept a thread retrying Redis or sweeping for good.
        """
        self.revocations.close()
        self.hangups.close()
        self.broker.close()
        self.broker.join()
        self.db.dispose()

    def __post_init__(self) -> None:
        """Revocations reach this process's SDK-key cache, and the others' through Redis;
        opt-in enrolments are counted per SDK key (``FLAGSVC_ENROLL_LIMIT``); stream slots
        are shared per SDK key and client address (``FLAGSVC_MAX_STREAMS_PER_*``)."""
        self.revocations = KeyRevocations(self.sdk_keys, self.config.redis_url)
        self.enrollments = SharedCounter(
            self.config.enroll_limit,
            self.config.enroll_window_seconds,
            namespace="enrollments",
            redis_url=self.config.redis_url,
        )
        self.early_adopters = Sketches(self.config.redis_url)
        self.streams = StreamSlots(
            self.config.max_streams_per_key, self.config.max_streams_per_address
        )
