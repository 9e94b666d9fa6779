"""ORM rows: the persistence shape only (no HTTP, no business rules).

Every row a user edits has a ``version`` that SQLAlchemy bumps on each UPDATE
(``version_id_col``); the API exposes it as the ETag.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any
from typing import ClassVar

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import DateTime
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import declared_attr
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship
from sqlalchemy.types import TypeDecorator

from flagsvc.domain.flow import FLOW_ACTIONS

FLOW_ACTIONS_SQL = "action IN ({})".format(", ".join(f"'{action}'" for action in FLOW_ACTIONS))
"""The audit actions flow metrics read, as SQL (the partial index's predicate)."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Store naive UTC, return aware UTC: SQLite keeps no zone, PostgreSQL keeps it."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can reproduce."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Versioned:
    """Mixin: optimistic-concurrency version, bumped by SQLAlchemy on every UPDATE."""

    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 - a class-level directive
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # the audit's actor
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class UiSession(Base):
    """A signed-in browser. Its cookie holds the id; only this row makes it count.

    Stored as a SHA-256 hash like tokens; signing out deletes the row, so a copy of
    the cookie taken before signs nobody in.
    """

    __tablename__ = "ui_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Environment(Versioned, Base):
    __tablename__ = "environments"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    gated: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class SdkKey(Base):
    __tablename__ = "sdk_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # written at most once a minute per key and process (not per request): see credentials
    last_used_at: Mapped[datetime | None]
    environment: Mapped[Environment] = relationship(lazy="joined")


class ValueStream(Versioned, Base):
    """A team of teams delivering to customers (Flow Framework); objectives belong to one,
    and a flag to its objective's (through the key result it serves)."""

    __tablename__ = "value_streams"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Objective(Versioned, Base):
    __tablename__ = "objectives"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    period: Mapped[str] = mapped_column(String(20), index=True)
    owner: Mapped[str] = mapped_column(String(100))
    value_stream_id: Mapped[int | None] = mapped_column(
        ForeignKey("value_streams.id"), index=True, nullable=True
    )
    created_at: Mapped[datetime]
    value_stream: Mapped[ValueStream | None] = relationship()  # lazy: objectives get FOR UPDATE
    key_results: Mapped[list[KeyResult]] = relationship(
        back_populates="objective", order_by="KeyResult.id", lazy="selectin"
    )


class KeyResult(Versioned, Base):
    __tablename__ = "key_results"
    id: Mapped[int] = mapped_column(primary_key=True)
    objective_id: Mapped[int] = mapped_column(ForeignKey("objectives.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    baseline: Mapped[float] = mapped_column(Float)
    target: Mapped[float] = mapped_column(Float)
    current: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(40))
    # None: typed in (``current`` is the value); else a flow metric the value is computed
    # from on every read (flagsvc.domain.measures.MeasureSpec.as_json), ``current`` unused
    measure: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime]
    objective: Mapped[Objective] = relationship(back_populates="key_results")


def _boolean_variations() -> list[dict[str, Any]]:
    return [
        {"key": "on", "value": True, "description": ""},
        {"key": "off", "value": False, "description": ""},
    ]


def _boolean_off_default(context: Any) -> str | None:
    """A boolean row left without an off variation answers "off"; a typed row's unset off
    stays None (the caller's default). The ORM leaves a None value to the default, so the
    default must know which kind of row it is completing."""
    value_type = context.get_current_parameters().get("value_type", "boolean")
    return "off" if value_type == "boolean" else None


class Flag(Versioned, Base):
    __tablename__ = "flags"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    flow_item: Mapped[str] = mapped_column(String(20), index=True)
    key_result_id: Mapped[int] = mapped_column(ForeignKey("key_results.id"), index=True)
    # fixed at creation; variations: [{"key", "value", "description"}, ...] in order.
    # Unset, a row is a boolean flag (its fixed variations), as the migration made them.
    value_type: Mapped[str] = mapped_column(String(10), default="boolean")
    variations: Mapped[list[Any]] = mapped_column(JSON, default=lambda: _boolean_variations())
    on_variation: Mapped[str] = mapped_column(String(100), default="on")
    off_variation: Mapped[str | None] = mapped_column(  # None: the caller's default
        String(100), default=_boolean_off_default
    )
    salt: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    ready_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]  # hidden from lists; its history stays in the audit
    key_result: Mapped[KeyResult] = relationship()
    readiness_items: Mapped[list[ReadinessItem]] = relationship(
        back_populates="flag",
        order_by="ReadinessItem.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class ReadinessItem(Base):
    __tablename__ = "readiness_items"
    __table_args__ = (UniqueConstraint("flag_id", "item_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    item_key: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(200))
    required: Mapped[bool] = mapped_column(Boolean)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    flag: Mapped[Flag] = relationship(back_populates="readiness_items")


class Cohort(Versioned, Base):
    __tablename__ = "cohorts"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[list[Any]] = mapped_column(JSON)
    opt_in: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    # kept by services.cohorts with every member change (a Core UPDATE: the version, and
    # so the ETag, stays); a member change need not count a million rows
    member_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CohortMember(Base):
    __tablename__ = "cohort_members"
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    added_at: Mapped[datetime]


class CohortMemberChange(Base):
    """Every user key a bulk member change added or removed, under its audit event's
    ``seq`` (the event names 20): the incremental build applies them instead of
    re-reading the cohort. Kept for the last ``member_journal.KEPT_EVENTS`` events."""

    __tablename__ = "cohort_member_changes"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    user_key: Mapped[str] = mapped_column(String(256), primary_key=True)


class FlagState(Versioned, Base):
    __tablename__ = "flag_states"
    __table_args__ = (UniqueConstraint("flag_id", "environment_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    rollout_basis_points: Mapped[int] = mapped_column(Integer)
    killed: Mapped[bool] = mapped_column(Boolean)
    launch_at: Mapped[datetime | None]
    # the ramp a scheduled launch starts general rollout at (basis points; set with launch_at)
    launch_rollout_basis_points: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    flag: Mapped[Flag] = relationship(lazy="joined")
    environment: Mapped[Environment] = relationship(lazy="joined")


class FlagStateCohort(Base):
    __tablename__ = "flag_state_cohorts"
    flag_state_id: Mapped[int] = mapped_column(ForeignKey("flag_states.id"), primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    variation: Mapped[str | None] = mapped_column(String(100))  # None: the on variation


class FlagExclusion(Base):
    __tablename__ = "flag_exclusions"
    flag_state_id: Mapped[int] = mapped_column(ForeignKey("flag_states.id"), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(256), primary_key=True)


class AuditEvent(Base):
    """One change, chained to the event before it by ``prev_hash``."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_flag_key_seq", "flag_key", "seq"),
        Index("ix_audit_events_actor_seq", "actor", "seq"),
        Index("ix_audit_events_action_seq", "action", "seq"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
        # flow metrics read only these events; on PostgreSQL this index holds every
        # column they need, so reports never touch the (large) table itself
        Index(
            "ix_audit_events_flow",
            "flag_key",
            "seq",
            postgresql_include=["occurred_at", "action", "environment", "after"],
            postgresql_where=text(FLOW_ACTIONS_SQL),
            sqlite_where=text(FLOW_ACTIONS_SQL),
        ),
    )
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_key: Mapped[str] = mapped_column(String(300))
    flag_key: Mapped[str | None] = mapped_column(String(100))
    environment: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    after: Mapped[Any | None] = mapped_column(JSON, nullable=True)
    request_id: Mapped[str] = mapped_column(String(100))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # fingerprint of the audit key whose HMAC sealed the hash; None: plain SHA-256
    key_id: Mapped[str | None] = mapped_column(String(16))


class AuditCheckpoint(Base):
    """The newest event a verification found good, so the next one starts there.

    One row. Sealed (HMAC under the audit key) when keys are configured, so a table
    writer cannot move it past a rewrite; a full verification ignores it.
    """

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bool] = mapped_column(Boolean)
    seal: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime]


class FlagEvaluation(Base):
    """SDK-reported evaluation counts per flag and environment: observations, not audited."""

    __tablename__ = "flag_evaluations"
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), primary_key=True)
    evaluation_count: Mapped[int] = mapped_column(BigInteger)
    last_evaluated_at: Mapped[datetime]


class FlagEarlyAdopters(Base):
    """Per flag and environment: evaluations answered on through an early-access cohort
    (all time), and, without Redis, the HyperLogLog sketch of the distinct early adopters
    (``flagsvc.domain.hyperloglog``; with Redis the sketch lives there and this is null).
    """

    __tablename__ = "flag_early_adopters"
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), primary_key=True)
    early_access_evaluations: Mapped[int] = mapped_column(BigInteger)
    sketch: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class FlagReachHour(Base):
    """One hour of SDK-reported evaluations per flag and environment, and how many of
    them were answered on through an early-access cohort (the early-access reach).

    A ring of 24 slots per flag and environment (``slot`` = ``hour`` mod 24): the first
    report of a new hour overwrites the slot's day-old counts, so the table never holds
    more than a day and needs no clean-up job.
    """

    __tablename__ = "flag_reach_hours"
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hour: Mapped[int] = mapped_column(BigInteger)  # hours since the Unix epoch (UTC)
    evaluation_count: Mapped[int] = mapped_column(BigInteger)
    cohort_count: Mapped[int] = mapped_column(BigInteger)


class Webhook(Versioned, Base):
    """Where notifications go: a URL, the events it wants, its filters and signing secret.

    The secret signs bodies, so it is kept as given (a hash could not sign); it is shown
    once, when made, and never read back through the API or the UI.
    """

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]] = mapped_column(JSON)
    value_streams: Mapped[list[Any]] = mapped_column(JSON)
    environments: Mapped[list[Any]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(20))
    secret: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class WebhookDelivery(Base):
    """The outbox: one notification for one webhook, written in the transaction of the
    change that caused it, and the state of its delivery.

    ``status`` is ``pending`` until a receiver answers 2xx (``delivered``) or the retries
    run out (``dead``). ``leased_until`` is set by the worker that claimed it (``FOR
    UPDATE SKIP LOCKED``) for the length of one attempt, so no other worker sends it then.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(60))
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)
    flag_key: Mapped[str | None] = mapped_column(String(100))
    environment: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None]
    leased_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))


class WebhookAttempt(Base):
    """One try at a delivery: when, the receiver's status code, how long, what failed."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(500))


class WebhookNotice(Base):
    """A notification no change causes (a flag turned stale, a feature became safe to
    promise), remembered so the worker that finds it sends it once per occurrence."""

    __tablename__ = "webhook_notices"
    __table_args__ = (UniqueConstraint("event_type", "flag_key", "environment", "since"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(60))
    flag_key: Mapped[str] = mapped_column(String(100))
    environment: Mapped[str] = mapped_column(String(100))  # "" when about every environment
    since: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
