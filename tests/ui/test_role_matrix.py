"""Every UI form, every role: refused (403) exactly when ``domain.roles.allows`` says so.

The UI asks the API's one permission table both to hide a button and to accept a POST,
so this matrix is the API's role matrix seen through the browser.
"""

from __future__ import annotations

import pytest

from flagsvc.domain.roles import Permission
from flagsvc.domain.roles import Role
from flagsvc.domain.roles import allows

FLAG = "/ui/flags/f/environments/production"
FORMS = [
    ("/ui/flags", Permission.EDIT_FLAGS),
    ("/ui/flags/f/edit", Permission.EDIT_FLAGS),
    ("/ui/flags/f/archive", Permission.EDIT_FLAGS),
    ("/ui/flags/f/unarchive", Permission.EDIT_FLAGS),
    (f"{FLAG}/stage", Permission.MOVE_STAGES),
    (f"{FLAG}/kill", Permission.MOVE_STAGES),
    (f"{FLAG}/resume", Permission.MOVE_STAGES),
    (f"{FLAG}/cohorts", Permission.MOVE_STAGES),
    (f"{FLAG}/exclusions", Permission.MOVE_STAGES),
    ("/ui/flags/f/readiness/docs", Permission.MARK_READINESS),
    ("/ui/flags/f/readiness", Permission.MARK_READINESS),
    (f"{FLAG}/launch", Permission.SCHEDULE_LAUNCH),
    (f"{FLAG}/launch/cancel", Permission.SCHEDULE_LAUNCH),
    ("/ui/cohorts", Permission.EDIT_COHORTS),
    ("/ui/cohorts/c", Permission.EDIT_COHORTS),
    ("/ui/cohorts/c/members", Permission.EDIT_COHORTS),
    ("/ui/okrs/objectives", Permission.EDIT_OKRS),
    ("/ui/okrs/objectives/1/key-results", Permission.EDIT_OKRS),
    ("/ui/okrs/key-results/1", Permission.EDIT_OKRS),
    ("/ui/admin/tokens", Permission.MANAGE_TOKENS),
    ("/ui/admin/tokens/9999/revoke", Permission.MANAGE_TOKENS),
    ("/ui/admin/environments", Permission.MANAGE_ENVIRONMENTS),
    ("/ui/admin/environments/staging/sdk-keys", Permission.MANAGE_ENVIRONMENTS),
    ("/ui/admin/environments/staging/sdk-keys/9999/revoke", Permission.MANAGE_ENVIRONMENTS),
]


@pytest.mark.parametrize("role", list(Role))
def test_ui_forms__each_role__403_exactly_where_the_permission_table_refuses(ui, secrets, role):
    browser = ui(secrets[role.value])
    for path, permission in FORMS:
        status = browser.post(path, {}).status_code
        if allows(role, permission):
            assert status != 403, (role, path)
        else:
            assert status == 403, (role, path)


@pytest.mark.parametrize("role", list(Role))
def test_ui_pages__each_role__every_page_readable(ui, secrets, role):
    browser = ui(secrets[role.value])
    for path in (
        "/ui/flags",
        "/ui/cohorts",
        "/ui/readiness",
        "/ui/okrs",
        "/ui/timing",
        "/ui/audit",
        "/ui/start",
    ):
        assert browser.get(path).status_code == 200, (role, path)
