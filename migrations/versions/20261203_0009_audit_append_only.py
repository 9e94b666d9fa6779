"""Audit beyond the application: append-only at the database, keyed seals, checkpoints

- audit_events refuses UPDATE and DELETE by trigger (PostgreSQL: a PL/pgSQL trigger
  function; SQLite: two RAISE(ABORT) triggers). Row triggers do not fire on TRUNCATE,
  so a wipe is left to the kept head to catch (and tests can still empty tables).
- audit_events.key_id: fingerprint of the audit key that sealed an event (HMAC);
  NULL for the plain SHA-256 events written without a key.
- audit_checkpoints: where the last verification stopped (one row).

Revision ID: 0009_audit_append_only
Revises: 0008_variations
Create Date: 2026-12-03 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_audit_append_only"
down_revision = "0008_variations"
branch_labels = None
depends_on = None

REFUSAL = "audit_events is append-only"
POSTGRESQL_UP = (
    f"""
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """,
)
POSTGRESQL_DOWN = (
    "DROP TRIGGER audit_events_append_only ON audit_events",
    "DROP FUNCTION audit_events_append_only()",
)
SQLITE_UP = tuple(
    f"""
    CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: {verb} refused'); END
    """
    for verb in ("UPDATE", "DELETE")
)
SQLITE_DOWN = ("DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete")


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("key_id", sa.String(length=16), nullable=True))
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("seal", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    for statement in _triggers(up=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _triggers(up=False):
        op.execute(statement)
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("key_id")


def _triggers(*, up: bool) -> tuple[str, ...]:
    if op.get_bind().dialect.name == "postgresql":
        return POSTGRESQL_UP if up else POSTGRESQL_DOWN
    return SQLITE_UP if up else SQLITE_DOWN
