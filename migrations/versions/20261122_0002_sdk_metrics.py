"""SDK evaluation metrics: flag_evaluations (count and last evaluation per flag and environment)

Revision ID: 0002_sdk_metrics
Revises: 46e473b76434
Create Date: 2026-11-22 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_sdk_metrics"
down_revision = "46e473b76434"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flag_evaluations",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_count", sa.BigInteger(), nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_flag_evaluations_environment_id_environments"),
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_flag_evaluations_flag_id_flags")
        ),
        sa.PrimaryKeyConstraint("flag_id", "environment_id", name=op.f("pk_flag_evaluations")),
    )


def downgrade() -> None:
    op.drop_table("flag_evaluations")
