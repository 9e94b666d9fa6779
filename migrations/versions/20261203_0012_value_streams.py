"""value_streams, and objectives.value_stream_id (a flag belongs to its objective's)

Revision ID: 0012_value_streams
Revises: 0011_measured_key_results
Create Date: 2026-12-03 08:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_value_streams"
down_revision = "0011_measured_key_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "value_streams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_value_streams")),
        sa.UniqueConstraint("key", name=op.f("uq_value_streams_key")),
    )
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_stream_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_objectives_value_stream_id"), ["value_stream_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_objectives_value_stream_id_value_streams"),
            "value_streams",
            ["value_stream_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_objectives_value_stream_id_value_streams"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_objectives_value_stream_id"))
        batch_op.drop_column("value_stream_id")
    op.drop_table("value_streams")
