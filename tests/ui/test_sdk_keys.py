"""SDK keys in the admin area: admins only; a new key shown once; revoked at once, audited."""

from __future__ import annotations

import re

from flagsvc.domain.actions import Action
from flagsvc.domain.roles import Role
from tests.conftest import Caller
from tests.ui.conftest import html

NEW_KEY = re.compile(r'id="new-secret" class="secret" type="text" readonly value="(fss_[^"]+)"')
KEYS = "/ui/admin/environments/{}/sdk-keys"


def test_sdk_keys_page__only_admins_see_it_in_the_menu_or_open_it(ui, secrets):
    for role in Role:
        browser = ui(secrets[role.value])
        menu = html(browser.get("/ui/flags"))
        page = browser.get("/ui/admin")
        if role is Role.ADMIN:
            assert page.status_code == 200 and 'href="/ui/admin"' in menu
        else:
            assert page.status_code == 403 and "/ui/admin" not in menu


def test_sdk_key__created_in_the_ui__shown_once_then_listed_by_prefix(ui_admin):
    created = ui_admin.post(KEYS.format("staging"))
    assert created.status_code == 201
    secret = NEW_KEY.search(html(created)).group(1)
    again = html(ui_admin.get("/ui/admin"))
    assert secret not in again and f"{secret[: len('fss_staging_') + 6]}…" in again


def test_sdk_key__revoked_in_the_ui__refused_at_once_and_audited(ui_admin, client, admin):
    secret = NEW_KEY.search(html(ui_admin.post(KEYS.format("production")))).group(1)
    sdk = Caller(client, secret)
    assert sdk.get("/sdk/v1/snapshot").status_code == 200  # cached for 5 s
    key_id = admin.get("/api/v1/environments/production/sdk-keys").json[0]["id"]
    revoked = ui_admin.post(f"{KEYS.format('production')}/{key_id}/revoke")
    assert revoked.status_code == 303
    page = html(ui_admin.get(revoked.headers["Location"]))
    assert "revoked in production" in page
    assert sdk.get("/sdk/v1/snapshot").status_code == 401
    events = admin.get("/api/v1/audit", query_string={"action": Action.SDK_KEY_REVOKED}).json
    assert [e["actor"] for e in events["items"]] == ["admin-token"]


def test_sdk_key__revoked_through_the_wrong_environment__404_page(ui_admin, admin):
    key_id = admin.get("/api/v1/environments/staging/sdk-keys").json[0]["id"]
    assert ui_admin.post(f"{KEYS.format('production')}/{key_id}/revoke").status_code == 404


def test_sdk_keys__old_address__moved_into_the_admin_area(ui_admin):
    response = ui_admin.get("/ui/sdk-keys")
    assert response.status_code == 301 and response.headers["Location"] == "/ui/admin#environments"
