"""cohorts.member_count (kept by every member change), cohort_member_changes (the keys
of each bulk member change, for the incremental snapshot build)

Revision ID: 0015_member_counts
Revises: 0014_early_adopters
Create Date: 2026-12-03 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_member_counts"
down_revision = "0014_early_adopters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cohorts") as batch:
        batch.add_column(
            sa.Column("member_count", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE cohorts SET member_count = "
        "(SELECT count(*) FROM cohort_members WHERE cohort_members.cohort_id = cohorts.id)"
    )
    op.create_table(
        "cohort_member_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_key", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("seq", "user_key", name=op.f("pk_cohort_member_changes")),
    )


def downgrade() -> None:
    op.drop_table("cohort_member_changes")
    with op.batch_alter_table("cohorts") as batch:
        batch.drop_column("member_count")
