"""sdk_keys.last_used_at: when a key last authenticated (to the minute)

Revision ID: 0004_sdk_key_last_used
Revises: 0003_launch_percent
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_sdk_key_last_used"
down_revision = "0003_launch_percent"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sdk_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sdk_keys", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
