"""Typed flag values: value_type, variations and on/off pointers replace the payload

Each flag's payload becomes the model without losing anything: no payload is a boolean
flag (variations on = true, off = false); a string, integer, float, object or array
payload is a flag of that type with the one variation ``on`` holding it, served on,
off answering the caller's default as before. A true/false payload becomes a boolean
flag (it repeated, or contradicted, the flag's own answer); those flags are named in
the output. ``flag_state_cohorts.variation`` lets a cohort serve its own variation.

The downgrade restores ``payload`` and refuses, naming the flags, when the data holds
what the former model cannot express (an off value, several variations of a typed
flag, a cohort's own variation).

The conversion is a frozen copy of ``flagsvc_sdk.engine.values.from_payload``: a
migration must keep meaning what it meant when it was written.

Revision ID: 0008_variations
Revises: 0007_unique_token_names
Create Date: 2026-12-03 04:00:00
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008_variations"
down_revision = "0007_unique_token_names"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_FLAGS = sa.table(
    "flags",
    sa.column("id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("value_type", sa.String),
    sa.column("variations", sa.JSON),
    sa.column("on_variation", sa.String),
    sa.column("off_variation", sa.String),
)
_STATE_COHORTS = sa.table("flag_state_cohorts", sa.column("variation", sa.String))
_BOOLEAN = (
    "boolean",
    [
        {"key": "on", "value": True, "description": ""},
        {"key": "off", "value": False, "description": ""},
    ],
    "on",
    "off",
)
_TYPES = {str: "string", int: "integer", float: "float", dict: "object", list: "object"}


def _from_payload(payload: Any) -> tuple[str, list[dict[str, Any]], str, str | None]:
    if payload is None or type(payload) is bool:
        return _BOOLEAN
    variation = {"key": "on", "value": payload, "description": "the former payload"}
    return _TYPES[type(payload)], [variation], "on", None


def upgrade() -> None:
    with op.batch_alter_table("flags") as batch:
        batch.add_column(sa.Column("value_type", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("variations", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("on_variation", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("off_variation", sa.String(length=100), nullable=True))
    with op.batch_alter_table("flag_state_cohorts") as batch:
        batch.add_column(sa.Column("variation", sa.String(length=100), nullable=True))
    connection = op.get_bind()
    for flag_id, key, payload in connection.execute(
        sa.select(_FLAGS.c.id, _FLAGS.c.key, _FLAGS.c.payload)
    ):
        if type(payload) is bool:
            log.warning("flag %r: payload %s became a boolean flag", key, payload)
        value_type, variations, on, off = _from_payload(payload)
        connection.execute(
            _FLAGS.update()
            .where(_FLAGS.c.id == flag_id)
            .values(
                value_type=value_type, variations=variations, on_variation=on, off_variation=off
            )
        )
    with op.batch_alter_table("flags") as batch:
        batch.alter_column("value_type", existing_type=sa.String(length=10), nullable=False)
        batch.alter_column("variations", existing_type=sa.JSON(), nullable=False)
        batch.alter_column("on_variation", existing_type=sa.String(length=100), nullable=False)
        batch.drop_column("payload")


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            _FLAGS.c.id,
            _FLAGS.c.key,
            _FLAGS.c.value_type,
            _FLAGS.c.variations,
            _FLAGS.c.on_variation,
            _FLAGS.c.off_variation,
        )
    ).all()
    payloads, unfit = {}, []
    for flag_id, key, value_type, variations, on, off in rows:
        if value_type == "boolean":
            payloads[flag_id] = None
        elif off is None and len(variations) == 1 and variations[0]["key"] == on:
            payloads[flag_id] = variations[0]["value"]
        else:
            unfit.append(key)
    own = connection.execute(
        sa.select(sa.func.count()).where(_STATE_COHORTS.c.variation.is_not(None))
    ).scalar()
    if unfit or own:
        raise RuntimeError(
            "cannot downgrade below 0008_variations without losing data: "
            + (
                f"flags with an off value or several variations: {', '.join(sorted(unfit))}; "
                if unfit
                else ""
            )
            + (f"{own} cohort attachments serve their own variation" if own else "")
        )
    with op.batch_alter_table("flags") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
    for flag_id, payload in payloads.items():
        connection.execute(_FLAGS.update().where(_FLAGS.c.id == flag_id).values(payload=payload))
    with op.batch_alter_table("flags") as batch:
        batch.drop_column("off_variation")
        batch.drop_column("on_variation")
        batch.drop_column("variations")
        batch.drop_column("value_type")
    with op.batch_alter_table("flag_state_cohorts") as batch:
        batch.drop_column("variation")
