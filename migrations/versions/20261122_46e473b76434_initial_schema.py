"""initial schema

Revision ID: 46e473b76434
Revises:
Create Date: 2026-11-22 15:21:08.266762
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "46e473b76434"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "audit_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("entity_key", sa.String(length=300), nullable=False),
        sa.Column("flag_key", sa.String(length=100), nullable=True),
        sa.Column("environment", sa.String(length=100), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_action_seq", ["action", "seq"], unique=False)
        batch_op.create_index("ix_audit_events_actor_seq", ["actor", "seq"], unique=False)
        batch_op.create_index("ix_audit_events_flag_key_seq", ["flag_key", "seq"], unique=False)
        batch_op.create_index("ix_audit_events_occurred_at", ["occurred_at"], unique=False)

    op.create_table(
        "cohorts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("opt_in", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohorts")),
        sa.UniqueConstraint("key", name=op.f("uq_cohorts_key")),
    )
    op.create_table(
        "environments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("gated", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_environments")),
        sa.UniqueConstraint("key", name=op.f("uq_environments_key")),
    )
    op.create_table(
        "objectives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objectives")),
    )
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_objectives_period"), ["period"], unique=False)

    op.create_table(
        "cohort_members",
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("user_key", sa.String(length=256), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name=op.f("fk_cohort_members_cohort_id_cohorts")
        ),
        sa.PrimaryKeyConstraint("cohort_id", "user_key", name=op.f("pk_cohort_members")),
    )
    op.create_table(
        "key_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("objective_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("current", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["objective_id"], ["objectives.id"], name=op.f("fk_key_results_objective_id_objectives")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_results")),
    )
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_key_results_objective_id"), ["objective_id"], unique=False
        )

    op.create_table(
        "sdk_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_sdk_keys_environment_id_environments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sdk_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_sdk_keys_key_hash")),
    )
    with op.batch_alter_table("sdk_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sdk_keys_environment_id"), ["environment_id"], unique=False
        )

    op.create_table(
        "flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("flow_item", sa.String(length=20), nullable=False),
        sa.Column("key_result_id", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_result_id"], ["key_results.id"], name=op.f("fk_flags_key_result_id_key_results")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flags")),
        sa.UniqueConstraint("key", name=op.f("uq_flags_key")),
    )
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flags_flow_item"), ["flow_item"], unique=False)
        batch_op.create_index(batch_op.f("ix_flags_key_result_id"), ["key_result_id"], unique=False)

    op.create_table(
        "flag_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("rollout_basis_points", sa.Integer(), nullable=False),
        sa.Column("killed", sa.Boolean(), nullable=False),
        sa.Column("launch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_flag_states_environment_id_environments"),
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_flag_states_flag_id_flags")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_states")),
        sa.UniqueConstraint("flag_id", "environment_id", name=op.f("uq_flag_states_flag_id")),
    )
    with op.batch_alter_table("flag_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_flag_states_environment_id"), ["environment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_flag_states_flag_id"), ["flag_id"], unique=False)

    op.create_table(
        "readiness_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("item_key", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_readiness_items_flag_id_flags")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readiness_items")),
        sa.UniqueConstraint("flag_id", "item_key", name=op.f("uq_readiness_items_flag_id")),
    )
    with op.batch_alter_table("readiness_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_readiness_items_flag_id"), ["flag_id"], unique=False)

    op.create_table(
        "flag_exclusions",
        sa.Column("flag_state_id", sa.Integer(), nullable=False),
        sa.Column("user_key", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_state_id"],
            ["flag_states.id"],
            name=op.f("fk_flag_exclusions_flag_state_id_flag_states"),
        ),
        sa.PrimaryKeyConstraint("flag_state_id", "user_key", name=op.f("pk_flag_exclusions")),
    )
    op.create_table(
        "flag_state_cohorts",
        sa.Column("flag_state_id", sa.Integer(), nullable=False),
        sa.Column("cohort_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name=op.f("fk_flag_state_cohorts_cohort_id_cohorts")
        ),
        sa.ForeignKeyConstraint(
            ["flag_state_id"],
            ["flag_states.id"],
            name=op.f("fk_flag_state_cohorts_flag_state_id_flag_states"),
        ),
        sa.PrimaryKeyConstraint("flag_state_id", "cohort_id", name=op.f("pk_flag_state_cohorts")),
    )


def downgrade() -> None:
    op.drop_table("flag_state_cohorts")
    op.drop_table("flag_exclusions")
    with op.batch_alter_table("readiness_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_readiness_items_flag_id"))

    op.drop_table("readiness_items")
    with op.batch_alter_table("flag_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_states_flag_id"))
        batch_op.drop_index(batch_op.f("ix_flag_states_environment_id"))

    op.drop_table("flag_states")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flags_key_result_id"))
        batch_op.drop_index(batch_op.f("ix_flags_flow_item"))

    op.drop_table("flags")
    with op.batch_alter_table("sdk_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sdk_keys_environment_id"))

    op.drop_table("sdk_keys")
    with op.batch_alter_table("key_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_results_objective_id"))

    op.drop_table("key_results")
    op.drop_table("cohort_members")
    with op.batch_alter_table("objectives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_objectives_period"))

    op.drop_table("objectives")
    op.drop_table("environments")
    op.drop_table("cohorts")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_occurred_at")
        batch_op.drop_index("ix_audit_events_flag_key_seq")
        batch_op.drop_index("ix_audit_events_actor_seq")
        batch_op.drop_index("ix_audit_events_action_seq")

    op.drop_table("audit_events")
    op.drop_table("api_tokens")
