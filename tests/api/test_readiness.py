"""The launch-readiness checklist through HTTP: marking, editing, ``ready_at`` and its events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import create_flag

FLAG = "/api/v1/flags/checkout"
READINESS = f"{FLAG}/readiness"
DEFAULT_ITEMS = ["docs", "announcement", "support_enablement", "sales_briefing"]


@pytest.fixture
def flag(engineer) -> dict[str, Any]:
    return create_flag(engineer, "checkout", name="Checkout")


def _mark(caller, item: str, done: bool = True, **fields: Any) -> Any:
    return caller.put(f"{READINESS}/{item}", json={"done": done, **fields})


def _mark_all(caller, items=DEFAULT_ITEMS) -> dict[str, Any]:
    for item in items:
        response = _mark(caller, item)
        assert response.status_code == 200, response.json
    return response.json


def _set_checklist(caller, items: list[dict[str, Any]]) -> Any:
    etag = caller.get(READINESS).headers["ETag"]
    return caller.put(READINESS, json={"items": items}, headers={"If-Match": etag})


def _actions(viewer) -> list[str]:
    return [e["action"] for e in viewer.get("/api/v1/audit?flag=checkout&limit=500").json["items"]]


def _event(viewer, action: str) -> dict[str, Any]:
    [event] = viewer.get(f"/api/v1/audit?flag=checkout&action={action}").json["items"]
    return event


def test_readiness__new_flag__default_items_required_and_open(flag, viewer):
    response = viewer.get(READINESS)
    assert response.status_code == 200 and response.headers["ETag"]
    body = response.json
    assert [item["key"] for item in body["items"]] == DEFAULT_ITEMS
    assert all(i["required"] and not i["done"] and i["done_at"] is None for i in body["items"])
    assert body["ready"] is False and body["ready_at"] is None and body["missing"] == DEFAULT_ITEMS


def test_mark_item__done__records_who_when_and_note(flag, marketing, clock):
    response = _mark(marketing, "docs", note="Help centre article live")
    assert response.status_code == 200
    docs = response.json["items"][0]
    assert docs["done"] is True and docs["note"] == "Help centre article live"
    assert docs["done_by"] == "marketing-token"
    assert docs["done_at"] == clock().isoformat()
    assert response.json["missing"] == DEFAULT_ITEMS[1:]


def test_mark_item__undone__clears_who_and_when_keeps_note(flag, marketing):
    _mark(marketing, "docs", note="draft")
    body = _mark(marketing, "docs", done=False).json
    docs = body["items"][0]
    assert docs["done"] is False and docs["done_at"] is None and docs["done_by"] is None
    assert docs["note"] == "draft"


def test_mark_item__last_required_done__ready_at_set_and_flag_ready_event(
    flag, marketing, viewer, clock
):
    _mark_all(marketing, DEFAULT_ITEMS[:3])
    assert viewer.get(READINESS).json["ready_at"] is None
    clock.advance(hours=5)
    body = _mark(marketing, DEFAULT_ITEMS[3]).json
    assert body["ready"] is True and body["ready_at"] == clock().isoformat()
    ready = _event(viewer, "flag.ready")
    assert ready["flag_key"] == "checkout" and ready["after"] == {"ready_at": clock().isoformat()}
    listed = viewer.get("/api/v1/flags/checkout").json
    assert listed["ready"] is True and listed["ready_at"] == clock().isoformat()


def test_mark_item__undone_after_ready__ready_at_cleared_and_readiness_lost(
    flag, marketing, viewer
):
    _mark_all(marketing)
    body = _mark(marketing, "announcement", done=False, note="campaign moved").json
    assert body["ready"] is False and body["ready_at"] is None
    lost = _event(viewer, "flag.readiness_lost")
    assert lost["after"] == {"ready_at": None, "missing": ["announcement"]}
    assert _actions(viewer).count("readiness.item_marked") == 5


def test_mark_item__same_state_again__200_and_no_event(flag, marketing, viewer):
    _mark(marketing, "docs", note="n")
    again = _mark(marketing, "docs", note="n")
    assert again.status_code == 200
    assert _actions(viewer).count("readiness.item_marked") == 1


def test_mark_item__each_change__one_event_with_flag_key_and_chain_valid(flag, marketing, viewer):
    _mark(marketing, "docs")
    marked = _event(viewer, "readiness.item_marked")
    assert marked["flag_key"] == "checkout" and marked["actor_role"] == "marketing"
    assert marked["before"] == {"item": "docs", "done": False, "note": ""}
    assert marked["after"] == {"item": "docs", "done": True, "note": ""}
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True


@pytest.mark.parametrize(
    ("path", "name"),
    [(f"{READINESS}/press", "press"), ("/api/v1/flags/gone/readiness/docs", "gone")],
)
def test_mark_item__unknown_item_or_flag__404_names_it(flag, marketing, path, name):
    response = marketing.put(path, json={"done": True})
    assert response.status_code == 404 and name in response.json["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "done"), ({"done": True, "note": "x" * 2001}, "note"), ({"done": True, "by": 1}, "by")],
)
def test_mark_item__bad_body__422_names_field(flag, marketing, body, field):
    response = marketing.put(f"{READINESS}/docs", json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


def test_mark_item__if_match__checked_when_sent(flag, marketing):
    etag = marketing.get(READINESS).headers["ETag"]
    fresh = marketing.put(f"{READINESS}/docs", json={"done": True}, headers={"If-Match": etag})
    assert fresh.status_code == 200
    stale = marketing.put(f"{READINESS}/docs", json={"done": False}, headers={"If-Match": etag})
    assert stale.status_code == 412


def test_set_checklist__kept_items__keep_done_state_new_items_open(flag, marketing, viewer):
    _mark(marketing, "docs", note="published")
    items = [
        {"key": "docs", "label": "Docs and API reference", "required": True},
        {"key": "webinar", "label": "Customer webinar", "required": False},
    ]
    response = _set_checklist(marketing, items)
    assert response.status_code == 200, response.json
    docs, webinar = response.json["items"]
    assert docs["done"] is True and docs["note"] == "published"
    assert docs["label"] == "Docs and API reference"
    assert webinar["done"] is False and webinar["required"] is False
    assert response.json["ready"] is True and response.json["missing"] == []
    event = _event(viewer, "readiness.checklist_set")
    assert [i["key"] for i in event["after"]["items"]] == ["docs", "webinar"]
    assert "flag.ready" in _actions(viewer)


def test_set_checklist__required_item_added_to_ready_flag__readiness_lost(flag, marketing, viewer):
    _mark_all(marketing)
    current = [{"key": k, "label": k, "required": True} for k in DEFAULT_ITEMS]
    response = _set_checklist(marketing, [*current, {"key": "legal", "label": "Legal review"}])
    assert response.json["ready"] is False and response.json["missing"] == ["legal"]
    assert _event(viewer, "flag.readiness_lost")["after"]["missing"] == ["legal"]


def test_set_checklist__missing_items_dropped__waived_by_whom_which_items(flag, marketing, viewer):
    # Given 2 of 4 done, When marketing replaces the checklist with the 2 done items only
    _mark(marketing, "docs")
    _mark(marketing, "announcement")
    kept = [{"key": "docs", "label": "Documentation published"},
            {"key": "announcement", "label": "Announcement ready"}]  # fmt: skip
    response = _set_checklist(marketing, kept)
    # Then the flag is ready, and the audit and the API say readiness was waived
    assert response.status_code == 200 and response.json["ready"] is True
    waived = [{"key": "support_enablement", "label": "Support team enabled"},
              {"key": "sales_briefing", "label": "Sales briefed"}]  # fmt: skip
    event = _event(viewer, "readiness.waived")
    assert event["actor"] == "marketing-token" and event["actor_role"] == "marketing"
    assert event["after"] == {"items": waived, "still_missing": []}
    assert _event(viewer, "flag.ready")["after"]["waived"] == [
        "support_enablement",
        "sales_briefing",
    ]
    [shown] = response.json["waivers"]
    assert shown["by"] == "marketing-token" and shown["items"] == waived
    assert viewer.get(READINESS).json["waivers"] == response.json["waivers"]


def test_set_checklist__missing_item_made_optional__waived(flag, marketing, viewer):
    items = [{"key": k, "label": k, "required": k != "docs"} for k in DEFAULT_ITEMS]
    response = _set_checklist(marketing, items)
    assert [i["key"] for i in response.json["waivers"][0]["items"]] == ["docs"]
    assert response.json["ready"] is False  # three still missing: waived, not ready
    assert _event(viewer, "readiness.waived")["after"]["still_missing"] == DEFAULT_ITEMS[1:]


def test_set_checklist__done_item_dropped_or_item_added__no_waiver(flag, marketing, viewer):
    _mark(marketing, "docs")
    rest = [{"key": k, "label": k} for k in DEFAULT_ITEMS[1:]]
    assert _set_checklist(marketing, [*rest, {"key": "legal", "label": "Legal"}]).status_code == 200
    assert "readiness.waived" not in _actions(viewer)
    assert viewer.get(READINESS).json["waivers"] == []


def test_set_checklist__same_items__200_and_no_event(flag, marketing, viewer):
    same = [{"key": i["key"], "label": i["label"]} for i in viewer.get(READINESS).json["items"]]
    assert _set_checklist(marketing, same).status_code == 200
    assert "readiness.checklist_set" not in _actions(viewer)


def test_set_checklist__duplicate_key__422_names_items_index_key(flag, marketing):
    items = [{"key": "docs", "label": "A"}, {"key": "docs", "label": "B"}]
    response = _set_checklist(marketing, items)
    assert response.status_code == 422
    assert "key" in response.json["errors"]["json"]["items"]["1"]


@pytest.mark.parametrize("count", [0, 31])
def test_set_checklist__too_few_or_many_items__422(flag, marketing, count):
    items = [{"key": f"item-{n}", "label": "L"} for n in range(count)]
    response = _set_checklist(marketing, items)
    assert response.status_code == 422 and "items" in response.json["errors"]["json"]


def test_set_checklist__without_if_match__428_and_stale__412(flag, marketing):
    items = [{"key": "docs", "label": "Docs"}]
    assert marketing.put(READINESS, json={"items": items}).status_code == 428
    etag = marketing.get(READINESS).headers["ETag"]
    _mark(marketing, "docs")
    stale = marketing.put(READINESS, json={"items": items}, headers={"If-Match": etag})
    assert stale.status_code == 412


def test_readiness__engineer_viewer__cannot_mark_or_edit(flag, engineer, viewer):
    for caller in (engineer, viewer):
        assert _mark(caller, "docs").status_code == 403
        items = {"items": [{"key": "docs", "label": "Docs"}]}
        assert caller.put(READINESS, json=items, headers={"If-Match": "*"}).status_code == 403
        assert caller.get(READINESS).status_code == 200


def test_readiness__sdk_key_403_and_anonymous_401(flag, sdk, anonymous):
    assert sdk.get(READINESS).status_code == 403
    assert anonymous.put(f"{READINESS}/docs", json={"done": True}).status_code == 401
