"""key_results.measure: a key result measured from a flow metric (None: typed in)

Revision ID: 0011_measured_key_results
Revises: 0010_flag_archived
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_measured_key_results"
down_revision = "0010_flag_archived"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("measure", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.drop_column("measure")
