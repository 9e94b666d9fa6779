"""Launch ramp on flag_states; covering index for flow metrics on audit_events

flag_states.launch_rollout_basis_points: the general rollout % a scheduled launch
starts at. ix_audit_events_flow: (flag_key, seq) over the six flow actions only,
carrying (PostgreSQL INCLUDE) every column the flow report reads, so it is served
from the index alone (see docs/flow-performance.md).

Revision ID: 0003_launch_percent
Revises: 0002_sdk_metrics
Create Date: 2026-11-22 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_launch_percent"
down_revision = "0002_sdk_metrics"
branch_labels = None
depends_on = None


FLOW_ACTIONS_SQL = (
    "action IN ('flag.created', 'flag.stage_changed', 'flag.killed', 'flag.resumed', "
    "'flag.ready', 'flag.readiness_lost')"
)


def upgrade() -> None:
    with op.batch_alter_table("flag_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("launch_rollout_basis_points", sa.Integer(), nullable=True))
    op.create_index(
        "ix_audit_events_flow",
        "audit_events",
        ["flag_key", "seq"],
        unique=False,
        postgresql_include=["occurred_at", "action", "environment", "after"],
        postgresql_where=sa.text(FLOW_ACTIONS_SQL),
        sqlite_where=sa.text(FLOW_ACTIONS_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_flow", table_name="audit_events")
    with op.batch_alter_table("flag_states", schema=None) as batch_op:
        batch_op.drop_column("launch_rollout_basis_points")
