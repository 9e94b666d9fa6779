"""flags.archived_at: an archived flag is hidden from lists and kept in the audit

Revision ID: 0010_flag_archived
Revises: 0009_audit_append_only
Create Date: 2026-12-03 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_flag_archived"
down_revision = "0009_audit_append_only"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
