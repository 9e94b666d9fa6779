"""The audit's vocabulary: every action an event can record, in one place.

Writers (the services) record an :class:`Action`; readers (timelines, flow metrics,
stale-flag reports, the UI's filters) compare against the same members, so a rename
is one edit and a typo is a type error. The values are stored in the audit table and
hashed into the chain: never change a value, only add members.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What an audit event says happened (``<entity>.<what happened>``)."""

    FLAG_CREATED = "flag.created"
    FLAG_UPDATED = "flag.updated"
    FLAG_STAGE_CHANGED = "flag.stage_changed"
    FLAG_KILLED = "flag.killed"
    FLAG_RESUMED = "flag.resumed"
    FLAG_COHORTS_SET = "flag.cohorts_set"
    FLAG_EXCLUSIONS_SET = "flag.exclusions_set"
    FLAG_VARIATIONS_SET = "flag.variations_set"
    FLAG_STATE_REPAIRED = "flag.state_repaired"
    FLAG_READY = "flag.ready"
    FLAG_READINESS_LOST = "flag.readiness_lost"
    FLAG_LAUNCH_SCHEDULED = "flag.launch_scheduled"
    FLAG_LAUNCH_CANCELLED = "flag.launch_cancelled"
    FLAG_LAUNCH_RAN = "flag.launch_ran"
    FLAG_LAUNCH_SKIPPED = "flag.launch_skipped"
    FLAG_ARCHIVED = "flag.archived"
    FLAG_UNARCHIVED = "flag.unarchived"
    READINESS_CHECKLIST_SET = "readiness.checklist_set"
    READINESS_ITEM_MARKED = "readiness.item_marked"
    READINESS_WAIVED = "readiness.waived"
    COHORT_CREATED = "cohort.created"
    COHORT_UPDATED = "cohort.updated"
    COHORT_DELETED = "cohort.deleted"
    COHORT_MEMBERS_ADDED = "cohort.members_added"
    COHORT_MEMBERS_REMOVED = "cohort.members_removed"
    COHORT_MEMBER_ENROLLED = "cohort.member_enrolled"
    COHORT_MEMBER_LEFT = "cohort.member_left"
    OBJECTIVE_CREATED = "objective.created"
    OBJECTIVE_UPDATED = "objective.updated"
    OBJECTIVE_DELETED = "objective.deleted"
    KEY_RESULT_CREATED = "key_result.created"
    KEY_RESULT_UPDATED = "key_result.updated"
    KEY_RESULT_DELETED = "key_result.deleted"
    VALUE_STREAM_CREATED = "value_stream.created"
    ENVIRONMENT_CREATED = "environment.created"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_UPDATED = "webhook.updated"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_REDELIVERED = "webhook.redelivered"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    SDK_KEY_CREATED = "sdk_key.created"
    SDK_KEY_REVOKED = "sdk_key.revoked"
    AUDIT_SEALED = "audit.sealed"
