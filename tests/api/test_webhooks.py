"""``/api/v1/webhooks``: admins only, the secret shown once, every change audited, bad
input a 422 naming the field, and URLs that point inside the network refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Caller
from tests.conftest import create_flag

HOOK = {"name": "launches", "url": "https://hooks.example.com/flagsvc"}


def _made(admin: Caller, **fields: Any) -> dict[str, Any]:
    response = admin.post("/api/v1/webhooks", json={**HOOK, **fields})
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def test_create__secret_shown_once__never_read_back(admin: Caller):
    made = _made(admin)

    assert made["secret"].startswith("whsec_")
    assert made["events"] and made["format"] == "json" and made["active"] is True
    shown = admin.get(f"/api/v1/webhooks/{made['id']}").json
    assert "secret" not in shown
    assert all("secret" not in hook for hook in admin.get("/api/v1/webhooks").json)


def test_create__audited_without_the_secret_or_the_url_path(admin: Caller):
    made = _made(admin, url="https://hooks.slack.com/services/T0/B0/tokentoken", secret="s" * 30)

    [event] = admin.get("/api/v1/audit", query_string={"action": "webhook.created"}).json["items"]
    assert event["entity_key"] == "launches"
    recorded = str(event)
    assert made["secret"] not in recorded and "tokentoken" not in recorded
    assert event["after"]["url"].startswith("https://hooks.slack.com/… (sha256 ")


@pytest.mark.parametrize("role", ["engineer", "marketing", "viewer"])
def test_webhooks__other_roles__forbidden(request: pytest.FixtureRequest, admin: Caller, role: str):
    made = _made(admin)
    caller: Caller = request.getfixturevalue(role)
    assert caller.get("/api/v1/webhooks").status_code == 403
    assert caller.post("/api/v1/webhooks", json={**HOOK, "name": "x"}).status_code == 403
    assert caller.get(f"/api/v1/webhooks/{made['id']}/deliveries").status_code == 403
    assert caller.delete(f"/api/v1/webhooks/{made['id']}").status_code == 403


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "http://127.0.0.1:6379/"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "http://[::1]/"}, "url"),
        ({"url": "http://localhost:8000/"}, "url"),
        ({"events": ["flag.exploded"]}, "events"),
        ({"value_streams": ["no-such-stream"]}, "value_streams"),
        ({"environments": ["nowhere"]}, "environments"),
        ({"format": "xml"}, "format"),
        ({"secret": "short"}, "secret"),
        ({"active": "yes"}, "active"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_create__bad_input__422_naming_the_field(admin: Caller, fields: dict[str, Any], field: str):
    response = admin.post("/api/v1/webhooks", json={**HOOK, **fields})

    assert response.status_code == 422, response.json
    assert field in str(response.json)
    assert admin.get("/api/v1/webhooks").json == []


def test_create__duplicate_name__409(admin: Caller):
    _made(admin)
    assert admin.post("/api/v1/webhooks", json=HOOK).status_code == 409


def test_patch__needs_if_match__rotates_secret_once__audited(admin: Caller):
    made = _made(admin)
    path = f"/api/v1/webhooks/{made['id']}"
    assert admin.patch(path, json={"active": False}).status_code == 428
    etag = admin.get(path).headers["ETag"]

    rotated = admin.patch(path, json={"rotate_secret": True}, headers={"If-Match": etag})

    assert rotated.status_code == 200, rotated.json
    assert rotated.json["secret"].startswith("whsec_") and rotated.json["secret"] != made["secret"]
    etag = rotated.headers["ETag"]
    paused = admin.patch(path, json={"active": False}, headers={"If-Match": etag})
    assert paused.json["active"] is False and paused.json["secret"] is None
    events = admin.get("/api/v1/audit", query_string={"action": "webhook.updated"}).json["items"]
    assert [e["after"].get("secret_replaced") for e in events] == [True, None]


def test_delete__gone_and_audited(admin: Caller):
    made = _made(admin)
    assert admin.delete(f"/api/v1/webhooks/{made['id']}").status_code == 204
    assert admin.get(f"/api/v1/webhooks/{made['id']}").status_code == 404
    assert admin.get(f"/api/v1/webhooks/{made['id']}/deliveries").status_code == 404
    deleted = admin.get("/api/v1/audit", query_string={"action": "webhook.deleted"}).json
    assert [e["entity_key"] for e in deleted["items"]] == ["launches"]


def _one_delivery(admin: Caller) -> tuple[dict[str, Any], dict[str, Any]]:
    made = _made(admin)
    create_flag(admin, "told")
    moved = admin.post(
        "/api/v1/flags/told/environments/staging/stage", json={"stage": "early_access"}
    )
    assert moved.status_code == 200, moved.json
    [row] = admin.get(f"/api/v1/webhooks/{made['id']}/deliveries").json["items"]
    return made, row


def test_redeliver__202_with_the_delivery__404_and_403_as_json(
    request: pytest.FixtureRequest, admin: Caller
):
    made, row = _one_delivery(admin)
    path = f"/api/v1/webhooks/{made['id']}/deliveries/{row['id']}/redeliver"

    again = admin.post(path)

    assert again.status_code == 202, again.json
    assert again.json["event_id"] == row["event_id"] and again.json["status"] == "pending"
    audited = admin.get("/api/v1/audit", query_string={"action": "webhook.redelivered"}).json
    assert audited["items"][0]["after"] == {"event_id": row["event_id"], "status": "pending"}
    missing = admin.post(f"/api/v1/webhooks/{made['id']}/deliveries/999999/redeliver")
    assert missing.status_code == 404 and "delivery" in missing.json["message"]
    engineer: Caller = request.getfixturevalue("engineer")
    assert engineer.post(path).status_code == 403


def test_redeliver__paused__409_saying_so(admin: Caller):
    made, row = _one_delivery(admin)
    etag = admin.get(f"/api/v1/webhooks/{made['id']}").headers["ETag"]
    paused = admin.patch(
        f"/api/v1/webhooks/{made['id']}", json={"active": False}, headers={"If-Match": etag}
    )
    assert paused.status_code == 200

    refused = admin.post(f"/api/v1/webhooks/{made['id']}/deliveries/{row['id']}/redeliver")

    assert refused.status_code == 409 and "paused" in refused.json["message"]
