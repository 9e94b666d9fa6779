"""The admin area: tokens, environments, SDK keys; admins only; secrets shown once."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import html

SECRET_FIELD = re.compile(r'id="new-secret" class="secret" type="text" readonly value="([^"]+)"')


@pytest.mark.parametrize("role", ["engineer", "marketing", "viewer"])
def test_admin__not_an_admin__403_and_no_menu_entry(ui, secrets, role):
    browser = ui(secrets[role])
    assert browser.get("/ui/admin").status_code == 403
    assert 'href="/ui/admin"' not in html(browser.get("/ui/okrs"))
    assert browser.post("/ui/admin/tokens", {"name": "x", "role": "admin"}).status_code == 403


def test_token_create__secret_shown_once_then_it_signs_in(ui_admin, ui, admin):
    response = ui_admin.post("/ui/admin/tokens", {"name": "release-bot", "role": "engineer"})
    assert response.status_code == 201
    page = html(response)
    secret = SECRET_FIELD.search(page).group(1)
    assert "shown once" in page and secret.startswith("fst_")
    assert SECRET_FIELD.search(html(ui_admin.get("/ui/admin"))) is None  # reload: gone
    assert ui(secret).get("/ui/flags").status_code == 200
    names = [t["name"] for t in admin.get("/api/v1/tokens").json]
    assert "release-bot" in names


def test_token_create__bad_fields__422_per_field(ui_admin):
    response = ui_admin.post("/ui/admin/tokens", {"name": "", "role": "superuser"})
    assert response.status_code == 422
    page = html(response)
    assert 'id="token-name-error"' in page and 'id="token-role-error"' in page


def test_token_revoke__its_browser_signed_out_and_audited(ui_admin, ui, secrets, admin):
    viewer = ui(secrets["viewer"])
    token_id = next(t["id"] for t in admin.get("/api/v1/tokens").json if t["role"] == "viewer")
    assert ui_admin.post(f"/ui/admin/tokens/{token_id}/revoke").status_code == 303
    assert viewer.get("/ui/flags").status_code == 303  # to sign-in
    events = admin.get("/api/v1/audit?action=token.revoked").json["items"]
    assert [e["actor"] for e in events] == ["admin-token"]


def test_environment_create__gated__listed_and_every_flag_dark_there(ui_admin, admin, key_result):
    ui_admin.post("/ui/flags", {"key": "f1", "name": "F1", "flow_item": "feature",
                                "key_result_id": str(key_result)})  # fmt: skip
    response = ui_admin.post("/ui/admin/environments",
                             {"key": "eu-production", "name": "EU production", "gated": "yes"})  # fmt: skip
    assert response.status_code == 303
    envs = {e["key"]: e for e in admin.get("/api/v1/environments").json}
    assert envs["eu-production"]["gated"] is True
    assert admin.get("/api/v1/flags/f1/environments/eu-production").json["stage"] == "off"
    taken = ui_admin.post("/ui/admin/environments", {"key": "eu-production", "name": "Again"})
    assert taken.status_code == 409 and 'id="environment-key-error"' in html(taken)


def test_sdk_key__create_shown_once__listed_with_last_use__revoked(ui_admin, app, admin):
    created = ui_admin.post("/ui/admin/environments/staging/sdk-keys")
    secret = SECRET_FIELD.search(html(created)).group(1)
    assert secret.startswith("fss_staging_")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/sdk/v1/snapshot", headers=headers).status_code == 200
    page = html(ui_admin.get("/ui/admin"))
    assert "last used" in page
    key_id = admin.get("/api/v1/environments/staging/sdk-keys").json[0]["id"]
    response = ui_admin.post(f"/ui/admin/environments/staging/sdk-keys/{key_id}/revoke")
    assert response.status_code == 303
    assert client.get("/sdk/v1/snapshot", headers=headers).status_code == 401
    assert admin.get("/api/v1/environments/staging/sdk-keys").json[0]["revoked_at"]


def test_flag_page__code_snippets_name_the_flag_and_the_service(ui_engineer, engineer, key_result):
    variations = [{"key": "classic", "value": "grey"}, {"key": "bold", "value": "blue"}]
    created = engineer.post("/api/v1/flags", json={
        "key": "banner", "name": "Banner", "flow_item": "feature", "key_result_id": key_result,
        "value_type": "string", "variations": variations, "on_variation": "bold",
    })  # fmt: skip
    assert created.status_code == 201, created.json
    page = html(ui_engineer.get("/ui/flags/banner"))
    assert 'flags.get_string("banner", context, "")' in page
    assert 'client.get_string_value("banner", "", context)' in page
    assert "http://localhost/sdk/v1/evaluate" in page and 'os.environ["FLAGSVC_SDK_KEY"]' in page


def test_token_create__name_taken__409_next_to_the_name(ui_admin):
    response = ui_admin.post("/ui/admin/tokens", {"name": "viewer-token", "role": "viewer"})
    assert response.status_code == 409 and 'id="token-name-error"' in html(response)


def test_secret__only_in_its_own_card__never_in_a_cookie(ui_admin):
    page = html(ui_admin.post("/ui/admin/tokens", {"name": "bot", "role": "viewer"}))
    secret = SECRET_FIELD.search(page).group(1)
    assert page.count(secret) == 1 and 'data-replace-url="/ui/admin"' in page
    assert secret not in ui_admin.client.get_cookie("session").value
