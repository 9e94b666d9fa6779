"""Early-access reach: flag_reach_hours (a 24-slot ring of hourly evaluation counts)

Per flag and environment, the evaluations SDKs reported in each of the last 24 hours
and how many of them were answered on through an early-access cohort.

Revision ID: 0005_reach_hours
Revises: 0004_sdk_key_last_used
Create Date: 2026-12-03 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_reach_hours"
down_revision = "0004_sdk_key_last_used"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flag_reach_hours",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("evaluation_count", sa.BigInteger(), nullable=False),
        sa.Column("cohort_count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_flag_reach_hours_environment_id_environments"),
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_flag_reach_hours_flag_id_flags")
        ),
        sa.PrimaryKeyConstraint(
            "flag_id", "environment_id", "slot", name=op.f("pk_flag_reach_hours")
        ),
    )


def downgrade() -> None:
    op.drop_table("flag_reach_hours")
