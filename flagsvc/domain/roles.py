"""Roles and what each may do.

One table answers every permission question so the API, the UI and the tests
(the role matrix) cannot disagree.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Roles of admin tokens; SDK keys are a separate kind of credential."""

    ADMIN = "admin"
    ENGINEER = "engineer"
    MARKETING = "marketing"
    VIEWER = "viewer"


class Permission(StrEnum):
    """Things a caller may want to do through the admin API or UI."""

    READ = "read"
    MANAGE_TOKENS = "manage_tokens"
    MANAGE_ENVIRONMENTS = "manage_environments"
    MANAGE_WEBHOOKS = "manage_webhooks"  # admins only: a webhook sends data out of the network
    EDIT_OKRS = "edit_okrs"
    EDIT_FLAGS = "edit_flags"
    MOVE_STAGES = "move_stages"
    EDIT_COHORTS = "edit_cohorts"
    MARK_READINESS = "mark_readiness"
    SCHEDULE_LAUNCH = "schedule_launch"
    VERIFY_WHOLE_AUDIT = "verify_whole_audit"  # everyone else continues from the checkpoint


_ENGINEERING = frozenset(
    {Permission.EDIT_FLAGS, Permission.MOVE_STAGES, Permission.EDIT_COHORTS, Permission.EDIT_OKRS}
)
_LAUNCH_READINESS = frozenset({Permission.MARK_READINESS, Permission.SCHEDULE_LAUNCH})

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.ENGINEER: _ENGINEERING | {Permission.READ},
    Role.MARKETING: _LAUNCH_READINESS | {Permission.READ},
    Role.VIEWER: frozenset({Permission.READ}),
}


def allows(role: Role, permission: Permission) -> bool:
    """Tell whether ``role`` grants ``permission``."""
    return permission in GRANTS[role]
