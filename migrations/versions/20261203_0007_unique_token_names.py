"""api_tokens.name unique: the audit names the actor by it

Existing duplicates keep the oldest token's name; each later one is renamed
``<name> #<id>`` (cut to fit the column) before the constraint is added. The audit
keeps the names it recorded (it is append-only); the renamed tokens' ids tell them apart.

Revision ID: 0007_unique_token_names
Revises: 0006_ui_sessions
Create Date: 2026-12-03 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_unique_token_names"
down_revision = "0006_ui_sessions"
branch_labels = None
depends_on = None

NAME_LENGTH = 100


def upgrade() -> None:
    _rename_duplicates()
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_api_tokens_name"), ["name"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_api_tokens_name"), type_="unique")


def _rename_duplicates() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, name FROM api_tokens ORDER BY id")).all()
    seen = {name for _, name in rows}
    kept: set[str] = set()
    for token_id, name in rows:
        if name not in kept:
            kept.add(name)
            continue
        suffix = f" #{token_id}"
        renamed = name[: NAME_LENGTH - len(suffix)] + suffix
        while renamed in seen:  # "<name> #7" was someone's real name: make it longer
            suffix = f" #{token_id}" + suffix
            renamed = name[: NAME_LENGTH - len(suffix)] + suffix
        seen.add(renamed)
        connection.execute(
            sa.text("UPDATE api_tokens SET name = :name WHERE id = :id"),
            {"name": renamed, "id": token_id},
        )
