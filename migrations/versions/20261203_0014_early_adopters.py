"""Early-adopter evidence: flag_early_adopters (early-access evaluations, HLL sketch)

Per flag and environment, the evaluations SDKs reported as answered on through an
early-access cohort, all time, and (without Redis) the HyperLogLog sketch of the
distinct users they reached.

Revision ID: 0014_early_adopters
Revises: 0013_webhooks
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_early_adopters"
down_revision = "0013_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flag_early_adopters",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("early_access_evaluations", sa.BigInteger(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_flag_early_adopters_environment_id_environments"),
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_flag_early_adopters_flag_id_flags")
        ),
        sa.PrimaryKeyConstraint("flag_id", "environment_id", name=op.f("pk_flag_early_adopters")),
    )


def downgrade() -> None:
    op.drop_table("flag_early_adopters")
