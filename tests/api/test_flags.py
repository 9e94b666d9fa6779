"""Flags through HTTP: the definition, its defaults, the list and ETag-guarded PATCH."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy import select

from flagsvc.storage.models import Flag

FLAGS = "/api/v1/flags"
DEFAULT_ITEMS = ["docs", "announcement", "support_enablement", "sales_briefing"]


def _key_result(caller, title: str = "Faster checkout") -> dict[str, Any]:
    objective = caller.post(
        "/api/v1/objectives", json={"title": title, "period": "2026-Q4", "owner": "payments"}
    ).json
    return caller.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={"title": "Conversion", "metric": "conversion", "baseline": 0.3, "target": 0.4},
    ).json


def _flag(caller, key: str, key_result: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"key": key, "name": key.title(), "flow_item": "feature"}
    response = caller.post(FLAGS, json={**body, "key_result_id": key_result["id"], **fields})
    assert response.status_code == 201, response.json
    return response.json


def _events(viewer, flag_key: str, action: str | None = None) -> list[dict[str, Any]]:
    query = f"/api/v1/audit?flag={flag_key}&limit=500" + (f"&action={action}" if action else "")
    return viewer.get(query).json["items"]


def _keys(page: dict[str, Any]) -> list[str]:
    return [item["key"] for item in page["items"]]


# --- create -------------------------------------------------------------------------


def test_create_flag__valid__dark_everywhere_with_default_checklist(engineer, viewer):
    kr = _key_result(engineer)
    response = engineer.post(
        FLAGS,
        json={
            "key": "one-click",
            "name": "One-click checkout",
            "flow_item": "feature",
            "key_result_id": kr["id"],
        },
    )
    assert response.status_code == 201 and response.headers["ETag"]
    body = response.json
    assert body["objective_id"] == kr["objective_id"] and body["value_type"] == "boolean"
    assert [(v["key"], v["value"]) for v in body["variations"]] == [("on", True), ("off", False)]
    assert (body["on_variation"], body["off_variation"]) == ("on", "off")
    assert body["ready"] is False and body["ready_at"] is None
    assert body["readiness"] == {"done": 0, "total": 4, "missing": DEFAULT_ITEMS}
    off = {"stage": "off", "rollout_percent": 0, "killed": False}
    assert body["environments"] == {"development": off, "staging": off, "production": off}
    assert viewer.get(f"{FLAGS}/one-click").json == body


def test_create_flag__created__one_event_with_flag_key_and_chain_valid(engineer, viewer):
    _flag(engineer, "audited", _key_result(engineer))
    events = _events(viewer, "audited")
    assert [e["action"] for e in events] == ["flag.created"]
    assert events[0]["flag_key"] == "audited" and events[0]["after"]["key"] == "audited"
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True


def test_create_flag__two_flags__each_gets_its_own_salt(engineer, app):
    kr = _key_result(engineer)
    _flag(engineer, "first", kr)
    _flag(engineer, "second", kr)
    with app.extensions["flagsvc"].db.read() as session:
        salts = session.scalars(select(Flag.salt)).all()
    assert len(set(salts)) == 2 and all(len(salt) == 16 for salt in salts)


def test_create_flag__payload__422_points_to_variations(engineer):
    kr = _key_result(engineer)
    body = {"key": "old-style", "name": "O", "flow_item": "risk", "key_result_id": kr["id"]}
    response = engineer.post(FLAGS, json={**body, "payload": {"color": "blue"}})
    assert response.status_code == 422
    assert "variations" in response.json["errors"]["json"]["payload"][0]


@pytest.mark.parametrize("field", ["due_date", "target_date", "deadline"])
def test_create_flag__promised_date__400_explains_why(engineer, field):
    kr = _key_result(engineer)
    body = {"key": "dated", "name": "D", "flow_item": "feature", "key_result_id": kr["id"]}
    response = engineer.post(FLAGS, json={**body, field: "2026-12-24"})
    assert response.status_code == 400
    assert field in response.json["errors"]["json"]
    assert "does not store due or target dates" in response.json["message"]


def test_create_flag__unknown_key_result__422_names_key_result_id(engineer):
    body = {"key": "orphan", "name": "O", "flow_item": "debt", "key_result_id": 999}
    response = engineer.post(FLAGS, json=body)
    assert response.status_code == 422
    assert "key_result_id" in response.json["errors"]["json"]


def test_create_flag__bad_fields__422_names_each(engineer):
    body = {"key": "Not A Key", "flow_item": "epic", "key_result_id": "1", "extra": 1}
    response = engineer.post(FLAGS, json=body)
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {
        "key",
        "name",
        "flow_item",
        "key_result_id",
        "extra",
    }


@pytest.mark.parametrize("key", ["trailing\n", "UPPER", "-leading", "a" * 101, "sp ace"])
def test_create_flag__malformed_key__422(engineer, key):
    kr = _key_result(engineer)
    body = {"key": key, "name": "K", "flow_item": "feature", "key_result_id": kr["id"]}
    assert engineer.post(FLAGS, json=body).status_code == 422


def test_create_flag__nul_in_name__422_not_500(engineer):
    kr = _key_result(engineer)
    body = {"key": "nul", "name": "a\x00b", "flow_item": "feature", "key_result_id": kr["id"]}
    response = engineer.post(FLAGS, json=body)
    assert response.status_code == 422 and "name" in response.json["errors"]["json"]


def test_create_flag__duplicate_key__409_names_key(engineer):
    kr = _key_result(engineer)
    _flag(engineer, "twice", kr)
    body = {"key": "twice", "name": "Again", "flow_item": "feature", "key_result_id": kr["id"]}
    response = engineer.post(FLAGS, json=body)
    assert response.status_code == 409
    assert "key" in response.json["errors"]["json"]


# --- list ---------------------------------------------------------------------------


@pytest.fixture
def catalogue(engineer):
    """Four flags over two objectives; ``beta`` is in early access in staging."""
    checkout, search = _key_result(engineer, "Checkout"), _key_result(engineer, "Search")
    _flag(engineer, "alpha", checkout, name="Quick pay")
    _flag(engineer, "beta", checkout, flow_item="defect")
    _flag(engineer, "gamma", search, flow_item="risk", name="Beta search")
    _flag(engineer, "delta", search, flow_item="debt")
    moved = engineer.post(
        f"{FLAGS}/beta/environments/staging/stage", json={"stage": "early_access"}
    )
    assert moved.status_code == 200
    return {"checkout": checkout, "search": search}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=BETA", ["beta", "gamma"]),
        ("q=quick", ["alpha"]),
        ("q=%25", []),
        ("flow_item=defect", ["beta"]),
        ("stage=early_access&environment=staging", ["beta"]),
        ("stage=early_access&environment=production", []),
        ("stage=early_access", ["beta"]),
        ("stage=off&environment=staging", ["alpha", "gamma", "delta"]),
    ],
)
def test_list_flags__filter__matching_flags_in_creation_order(viewer, catalogue, query, expected):
    response = viewer.get(f"{FLAGS}?{query}")
    assert response.status_code == 200, response.json
    assert _keys(response.json) == expected


def test_list_flags__okr_filters__flags_of_that_key_result_or_objective(viewer, catalogue):
    search = catalogue["search"]
    by_kr = viewer.get(f"{FLAGS}?key_result_id={search['id']}").json
    by_objective = viewer.get(f"{FLAGS}?objective_id={catalogue['checkout']['objective_id']}").json
    assert _keys(by_kr) == ["gamma", "delta"]
    assert _keys(by_objective) == ["alpha", "beta"]


def test_list_flags__item__shows_stage_per_environment_and_readiness(viewer, catalogue):
    beta = viewer.get(f"{FLAGS}?q=beta&flow_item=defect").json["items"][0]
    assert beta["environments"]["staging"] == {
        "stage": "early_access",
        "rollout_percent": 0,
        "killed": False,
    }
    assert beta["readiness"]["missing"] == DEFAULT_ITEMS and beta["ready"] is False


def test_list_flags__paged__every_flag_once_in_order(viewer, catalogue):
    seen, cursor = [], None
    while True:
        page = viewer.get(f"{FLAGS}?limit=3" + (f"&cursor={cursor}" if cursor else "")).json
        seen += _keys(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["alpha", "beta", "gamma", "delta"]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("environment=staging", 422, "environment"),
        ("stage=launched", 422, "stage"),
        ("flow_item=epic", 422, "flow_item"),
        ("cursor=bogus", 422, "cursor"),
        ("unknown=1", 422, "unknown"),
    ],
)
def test_list_flags__bad_query__422_names_field(viewer, query, status, field):
    response = viewer.get(f"{FLAGS}?{query}")
    assert response.status_code == status
    assert field in response.json["errors"]["query"]


def test_list_flags__unknown_environment__404_names_it(viewer, catalogue):
    response = viewer.get(f"{FLAGS}?stage=off&environment=moon")
    assert response.status_code == 404 and "moon" in response.json["message"]


def test_list_flags__bigger_page__same_number_of_queries(engineer, viewer, app):
    kr = _key_result(engineer)
    for n in range(6):
        _flag(engineer, f"flag-{n}", kr)
    statements: list[str] = []
    engine = app.extensions["flagsvc"].db.read_engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        viewer.get(f"{FLAGS}?limit=2")
        small = len(statements)
        viewer.get(f"{FLAGS}?limit=6")
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert len(statements) - small == small


# --- read and patch ------------------------------------------------------------------


def test_get_flag__unknown__404_names_it(viewer):
    response = viewer.get(f"{FLAGS}/nowhere")
    assert response.status_code == 404 and "nowhere" in response.json["message"]


def test_get_flag__if_none_match__304_until_a_stage_moves(engineer, viewer):
    _flag(engineer, "cached", _key_result(engineer))
    etag = viewer.get(f"{FLAGS}/cached").headers["ETag"]
    assert viewer.get(f"{FLAGS}/cached", headers={"If-None-Match": etag}).status_code == 304
    engineer.post(f"{FLAGS}/cached/environments/staging/stage", json={"stage": "early_access"})
    again = viewer.get(f"{FLAGS}/cached", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert again.json["environments"]["staging"]["stage"] == "early_access"


def test_patch_flag__without_if_match__428_then_stale__412_then_ok(engineer):
    _flag(engineer, "guarded", _key_result(engineer))
    path = f"{FLAGS}/guarded"
    assert engineer.patch(path, json={"name": "x"}).status_code == 428
    etag = engineer.get(path).headers["ETag"]
    first = engineer.patch(path, json={"name": "First"}, headers={"If-Match": etag})
    assert first.status_code == 200 and first.json["version"] == 2
    stale = engineer.patch(path, json={"name": "Second"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert engineer.get(path).json["name"] == "First"


def test_patch_flag__key_in_body__422_says_immutable(engineer):
    _flag(engineer, "fixed", _key_result(engineer))
    etag = engineer.get(f"{FLAGS}/fixed").headers["ETag"]
    response = engineer.patch(f"{FLAGS}/fixed", json={"key": "moved"}, headers={"If-Match": etag})
    assert response.status_code == 422
    assert "immutable" in response.json["errors"]["json"]["key"][0]


def test_patch_flag__fields_changed__audit_names_only_changed_fields(engineer, viewer):
    kr, other = _key_result(engineer), _key_result(engineer, "Other")
    _flag(engineer, "edited", kr, name="Before", description="same")
    etag = engineer.get(f"{FLAGS}/edited").headers["ETag"]
    change = {"description": "same", "key_result_id": other["id"], "name": "After"}
    response = engineer.patch(f"{FLAGS}/edited", json=change, headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.json["name"] == "After"
    assert response.json["objective_id"] == other["objective_id"]
    [updated] = _events(viewer, "edited", "flag.updated")
    assert updated["before"] == {"key_result_id": kr["id"], "name": "Before"}
    assert updated["after"] == {"key_result_id": other["id"], "name": "After"}


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ("value_type", "fixed when the flag is created"),
        ("payload", "variations"),
        ("variations", "PUT /api/v1/flags/<key>/variations"),
        ("off_variation", "PUT /api/v1/flags/<key>/variations"),
    ],
)
def test_patch_flag__values_in_body__422_says_where_they_change(engineer, field, says):
    _flag(engineer, "typed", _key_result(engineer))
    etag = engineer.get(f"{FLAGS}/typed").headers["ETag"]
    response = engineer.patch(f"{FLAGS}/typed", json={field: None}, headers={"If-Match": etag})
    assert response.status_code == 422
    assert says in response.json["errors"]["json"][field][0]


def test_patch_flag__nothing_changes__200_and_no_event(engineer, viewer):
    _flag(engineer, "steady", _key_result(engineer))
    etag = engineer.get(f"{FLAGS}/steady").headers["ETag"]
    same = engineer.patch(f"{FLAGS}/steady", json={"name": "Steady"}, headers={"If-Match": etag})
    assert same.status_code == 200 and same.json["version"] == 1
    assert _events(viewer, "steady", "flag.updated") == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"key_result_id": 999}, 422, "key_result_id"),
        ({"flow_item": "epic"}, 422, "flow_item"),
        ({"name": ""}, 422, "name"),
        ({"eta": "2026-11-01"}, 400, "eta"),
    ],
)
def test_patch_flag__bad_field__refused_naming_it(engineer, body, status, field):
    _flag(engineer, "patched", _key_result(engineer))
    etag = engineer.get(f"{FLAGS}/patched").headers["ETag"]
    response = engineer.patch(f"{FLAGS}/patched", json=body, headers={"If-Match": etag})
    assert response.status_code == status
    assert field in response.json["errors"]["json"]


# --- roles --------------------------------------------------------------------------


def test_flags__marketing_and_viewer__read_but_cannot_write(engineer, marketing, viewer):
    kr = _key_result(engineer)
    _flag(engineer, "shared", kr)
    body = {"key": "mine", "name": "M", "flow_item": "feature", "key_result_id": kr["id"]}
    for caller in (marketing, viewer):
        assert caller.post(FLAGS, json=body).status_code == 403
        assert caller.patch(f"{FLAGS}/shared", json={"name": "x"}).status_code == 403
        assert caller.get(f"{FLAGS}/shared").status_code == 200
        assert caller.get(FLAGS).status_code == 200


def test_flags__sdk_key_403_and_anonymous_401(sdk, anonymous):
    assert sdk.get(FLAGS).status_code == 403
    assert anonymous.get(FLAGS).status_code == 401
