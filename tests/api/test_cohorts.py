"""Cohorts and their members through HTTP, plus the opt-in service calls."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select

from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import NotFoundError
from flagsvc.domain.errors import PermissionDeniedError
from flagsvc.domain.errors import TooLargeError
from flagsvc.services import cohorts
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.storage.models import AuditEvent
from flagsvc.storage.models import CohortMember
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import Objective
from flagsvc.web.shapes import cohorts as cohorts_api
from tests.conftest import create_flag

BASE = "/api/v1/cohorts"
RULE = {"attribute": "country", "op": "in", "values": ["NL", "BE"]}


def cohort_body(key: str = "early", **fields: Any) -> dict[str, Any]:
    return {"key": key, "name": "Early adopters", **fields}


def create(caller, key: str = "early", **fields: Any) -> dict[str, Any]:
    response = caller.post(BASE, json=cohort_body(key, **fields))
    assert response.status_code == 201, response.json
    return response.json


def members(caller, key: str, add=(), remove=(), headers=None):
    body = {"add": list(add), "remove": list(remove)}
    return caller.post(f"{BASE}/{key}/members", json=body, headers=headers)


def events(app, action: str) -> list[AuditEvent]:
    with app.extensions["flagsvc"].db.read() as session:
        stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        return list(session.scalars(stmt))


def all_member_keys(caller, key: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = caller.get(f"{BASE}/{key}/members", query_string=query)
        assert response.status_code == 200, response.json
        seen += [item["user_key"] for item in response.json["items"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            return seen


def sdk_change(clock) -> Change:
    return Change(Actor("sdk-production", None, environment="production"), clock(), "req-sdk")


# --- create, read, list -------------------------------------------------------------


def test_create_cohort__valid__201_audited_and_readable(engineer, viewer, app):
    body = create(engineer, description="Loyal customers", rules=[RULE], opt_in=True)
    assert body["key"] == "early"
    assert body["rules"] == [RULE]
    assert body["opt_in"] is True
    assert body["member_count"] == 0
    assert body["used_by"] == []
    assert body["version"] == 1
    response = viewer.get(f"{BASE}/early")
    assert response.status_code == 200
    assert response.headers["ETag"]
    assert response.json["description"] == "Loyal customers"
    [event] = events(app, "cohort.created")
    assert event.entity_key == "early"
    assert event.after["rules"] == [RULE]


def test_create_cohort__defaults__no_rules_not_opt_in(engineer):
    body = create(engineer)
    assert (body["rules"], body["opt_in"], body["description"]) == ([], False, "")


def test_create_cohort__duplicate_key__409_names_key(engineer):
    create(engineer)
    response = engineer.post(BASE, json=cohort_body())
    assert response.status_code == 409
    assert "key" in response.json["errors"]["json"]


def test_get_cohort__unknown__404(viewer):
    assert viewer.get(f"{BASE}/nope").status_code == 404
    assert viewer.get(f"{BASE}/nope/members").status_code == 404


def test_get_cohort__if_none_match_current__304(engineer):
    create(engineer)
    etag = engineer.get(f"{BASE}/early").headers["ETag"]
    assert engineer.get(f"{BASE}/early", headers={"If-None-Match": etag}).status_code == 304


def test_list_cohorts__paged__every_cohort_once_with_member_counts(engineer, viewer):
    for n in range(5):
        create(engineer, f"c{n}")
    members(engineer, "c3", add=["u1", "u2"])
    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = viewer.get(BASE, query_string=query)
        assert response.status_code == 200
        seen += response.json["items"]
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert [c["key"] for c in seen] == ["c0", "c1", "c2", "c3", "c4"]
    assert {c["key"]: c["member_count"] for c in seen}["c3"] == 2


@pytest.mark.parametrize("cursor", ["garbage!", "cC0x", "dTE", "p-1"])
def test_list_cohorts__forged_cursor__422_names_cursor(viewer, cursor):
    response = viewer.get(BASE, query_string={"cursor": cursor})
    assert response.status_code == 422
    assert "cursor" in response.json["errors"]["query"]


def test_get_cohort__listed_in_flag_states__used_by_names_flag_and_environment(
    engineer, app, clock
):
    create(engineer)
    with app.extensions["flagsvc"].db.write() as session:
        cohort = cohorts.get_cohort(session, "early")
        flag = _flag(session, clock, "new-checkout")
        for env in session.scalars(select(Environment).where(Environment.key != "development")):
            state = FlagState(flag=flag, environment=env, stage="early_access", **STATE_DEFAULTS)
            state.updated_at = clock()
            session.add(state)
            session.flush()
            session.add(FlagStateCohort(flag_state_id=state.id, cohort_id=cohort.id, position=0))
    assert engineer.get(f"{BASE}/early").json["used_by"] == [
        {"flag": "new-checkout", "environment": "staging"},
        {"flag": "new-checkout", "environment": "production"},
    ]


STATE_DEFAULTS: dict[str, Any] = {"rollout_basis_points": 0, "killed": False}
KR_FIELDS: dict[str, Any] = {
    "metric": "rate",
    "baseline": 1,
    "target": 2,
    "current": 1,
    "unit": "%",
}


def _flag(session, clock, key: str) -> Flag:
    """A flag row made directly (the flags API is another slice)."""
    objective = Objective(title="Grow", period="2026-Q4", owner="web", created_at=clock())
    kr = KeyResult(objective=objective, title="Conversion", created_at=clock(), **KR_FIELDS)
    flag = Flag(key=key, name=key, flow_item="feature", key_result=kr, salt="s")
    flag.created_at = clock()
    session.add(flag)
    return flag


# --- PATCH and ETags ---------------------------------------------------------------


def test_patch_cohort__no_if_match__428(engineer):
    create(engineer)
    assert engineer.patch(f"{BASE}/early", json={"name": "X"}).status_code == 428


def test_patch_cohort__stale_if_match__412_and_unchanged(engineer):
    create(engineer)
    stale = engineer.get(f"{BASE}/early").headers["ETag"]
    ok = engineer.patch(f"{BASE}/early", json={"name": "First"}, headers={"If-Match": stale})
    assert ok.status_code == 200
    again = engineer.patch(f"{BASE}/early", json={"name": "Second"}, headers={"If-Match": stale})
    assert again.status_code == 412
    assert engineer.get(f"{BASE}/early").json["name"] == "First"


def test_patch_cohort__current_if_match__200_new_etag_audits_changed_fields_only(engineer, app):
    create(engineer, rules=[RULE])
    etag = engineer.get(f"{BASE}/early").headers["ETag"]
    new_rules = [{"attribute": "plan", "op": "eq", "values": ["pro"]}]
    body = {"name": "Early adopters", "rules": new_rules, "opt_in": True}
    response = engineer.patch(f"{BASE}/early", json=body, headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.json["rules"] == new_rules
    assert response.json["version"] == 2
    assert response.headers["ETag"] != etag
    assert response.headers["ETag"] == engineer.get(f"{BASE}/early").headers["ETag"]
    [event] = events(app, "cohort.updated")
    assert event.before == {"rules": [RULE], "opt_in": False}
    assert event.after == {"rules": new_rules, "opt_in": True}


def test_patch_cohort__nothing_changes__no_event_same_version(engineer, app):
    create(engineer)
    etag = engineer.get(f"{BASE}/early").headers["ETag"]
    body = {"name": "Early adopters"}
    response = engineer.patch(f"{BASE}/early", json=body, headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.json["version"] == 1
    assert response.headers["ETag"] == etag
    assert events(app, "cohort.updated") == []


def test_patch_cohort__sends_key__422_names_key(engineer):
    create(engineer)
    etag = engineer.get(f"{BASE}/early").headers["ETag"]
    response = engineer.patch(
        f"{BASE}/early", json={"key": "other", "name": "X"}, headers={"If-Match": etag}
    )
    assert response.status_code == 422
    assert "immutable" in response.json["errors"]["json"]["key"][0]
    assert engineer.get(f"{BASE}/early").json["name"] == "Early adopters"


def test_patch_cohort__unknown_cohort__404(engineer):
    response = engineer.patch(f"{BASE}/nope", json={"name": "X"}, headers={"If-Match": "x"})
    assert response.status_code == 404


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "index", "field"),
    [
        ([RULE, {"attribute": "a", "op": "like", "values": ["x"]}], "1", "op"),
        ([{"attribute": "a", "op": "eq", "values": []}], "0", "values"),
        ([{"attribute": "a", "op": "eq", "values": ["x"] * 1001}], "0", "values"),
        ([{"attribute": "a", "op": "eq", "values": [{"x": 1}]}], "0", "values"),
        ([{"attribute": "a", "op": "eq", "values": [["x"]]}], "0", "values"),
        ([{"attribute": "a", "op": "eq", "values": [None]}], "0", "values"),
        ([{"attribute": "a", "op": "eq", "values": ["x" * 1001]}], "0", "values"),
        ([{"attribute": "", "op": "eq", "values": ["x"]}], "0", "attribute"),
        ([{"attribute": "a\x00", "op": "eq", "values": ["x"]}], "0", "attribute"),
        ([{"attribute": "a", "op": "eq", "values": ["\udfff"]}], "0", "values"),
        ([{"attribute": "a", "op": "eq", "values": ["a\x00"]}], "0", "values"),
        ([{"op": "eq", "values": ["x"]}], "0", "attribute"),
        ([RULE, RULE, {"attribute": "a", "op": "eq", "values": ["x"], "extra": 1}], "2", "extra"),
        ([RULE, "eq"], "1", "_schema"),
        ([RULE, {"attribute": "v", "op": "semver_gte", "values": ["1.2.3", "x"]}], "1", "values"),
        ([{"attribute": "n", "op": "gt", "values": ["abc"]}], "0", "values"),
        ([{"attribute": "d", "op": "before", "values": ["yesterday"]}], "0", "values"),
        ([{"attribute": "e", "op": "matches", "values": ["(a+)+$"]}], "0", "values"),
    ],
)
def test_create_cohort__bad_rule__422_names_index_and_field(engineer, app, rules, index, field):
    response = engineer.post(BASE, json=cohort_body(rules=rules))
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]["rules"][index]
    assert events(app, "cohort.created") == []


def test_create_cohort__51_rules__422_names_rules(engineer):
    response = engineer.post(BASE, json=cohort_body(rules=[RULE] * 51))
    assert response.status_code == 422
    assert "rules" in response.json["errors"]["json"]


def test_create_cohort__50_rules__201(engineer):
    assert len(create(engineer, rules=[RULE] * 50)["rules"]) == 50


def test_create_cohort__nan_rule_value__422(engineer):
    raw = json.dumps(cohort_body(rules=[{"attribute": "a", "op": "gt", "values": [1]}]))
    response = engineer.post(
        BASE, data=raw.replace("[1]", "[NaN]"), content_type="application/json"
    )
    assert response.status_code == 422
    assert "values" in response.json["errors"]["json"]["rules"]["0"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "N"}, "key"),
        ({"key": "Bad Key", "name": "N"}, "key"),
        ({"key": "k" * 101, "name": "N"}, "key"),
        ({"key": 5, "name": "N"}, "key"),
        ({"key": "k"}, "name"),
        ({"key": "k", "name": ""}, "name"),
        ({"key": "k", "name": 7}, "name"),
        ({"key": "k", "name": "a\x00b"}, "name"),
        ({"key": "k", "name": "a\ud800"}, "name"),
        ({"key": "k", "name": "N", "description": "d" * 10_001}, "description"),
        ({"key": "k", "name": "N", "description": "a\x00"}, "description"),
        ({"key": "k", "name": "N", "opt_in": "yes"}, "opt_in"),
        ({"key": "k", "name": "N", "rules": {"attribute": "a"}}, "rules"),
        ({"key": "k", "name": "N", "rules": None}, "rules"),
        ({"key": "k", "name": "N", "color": "red"}, "color"),
    ],
)
def test_create_cohort__bad_field__422_names_it(engineer, body, field):
    response = engineer.post(BASE, json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


@pytest.mark.parametrize("raw", ["[]", "null", '"x"', "{", "7"])
def test_create_cohort__not_an_object__4xx_json(engineer, raw):
    response = engineer.post(BASE, data=raw, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.is_json


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"opt_in": None}, "opt_in"),
        ({"rules": [{"attribute": "a", "op": "nope", "values": [1]}]}, "rules"),
        ({"members": ["u1"]}, "members"),
        ({"description": "\ud800"}, "description"),
    ],
)
def test_patch_cohort__bad_field__422_names_it_nothing_applied(engineer, body, field):
    create(engineer)
    etag = engineer.get(f"{BASE}/early").headers["ETag"]
    response = engineer.patch(f"{BASE}/early", json=body, headers={"If-Match": etag})
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]
    assert engineer.get(f"{BASE}/early").headers["ETag"] == etag


# --- roles -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "engineer"])
def test_cohort_writes__engineering_roles__allowed(request, app, role):
    caller = request.getfixturevalue(role)
    create(caller)
    assert members(caller, "early", add=["u1"]).status_code == 200
    etag = caller.get(f"{BASE}/early").headers["ETag"]
    response = caller.patch(f"{BASE}/early", json={"name": "N"}, headers={"If-Match": etag})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("role", "status"), [("marketing", 403), ("viewer", 403), ("sdk", 403), ("anonymous", 401)]
)
def test_cohort_writes__other_callers__refused(request, engineer, role, status):
    create(engineer)
    caller = request.getfixturevalue(role)
    etag = engineer.get(f"{BASE}/early").headers["ETag"]
    assert caller.post(BASE, json=cohort_body("other")).status_code == status
    assert members(caller, "early", add=["u1"]).status_code == status
    response = caller.patch(f"{BASE}/early", json={"name": "N"}, headers={"If-Match": etag})
    assert response.status_code == status
    assert response.is_json


@pytest.mark.parametrize(
    ("role", "status"), [("marketing", 200), ("viewer", 200), ("sdk", 403), ("anonymous", 401)]
)
def test_cohort_reads__by_caller__only_admin_tokens(request, engineer, role, status):
    create(engineer)
    caller = request.getfixturevalue(role)
    for path in (BASE, f"{BASE}/early", f"{BASE}/early/members"):
        assert caller.get(path).status_code == status


# --- members -----------------------------------------------------------------------


def test_members__add_existing_remove_absent__idempotent_with_real_counts(engineer, app):
    create(engineer)
    first = members(engineer, "early", add=["a", "b", "c", "c"])
    assert first.json == {"added": 3, "removed": 0, "member_count": 3}
    second = members(engineer, "early", add=["b", "c", "d"], remove=["a", "zz"])
    assert second.json == {"added": 1, "removed": 1, "member_count": 3}
    third = members(engineer, "early", add=["b"], remove=["zz"])
    assert third.json == {"added": 0, "removed": 0, "member_count": 3}
    assert all_member_keys(engineer, "early", 10) == ["b", "c", "d"]
    assert engineer.get(f"{BASE}/early").json["member_count"] == 3
    added = [e.after for e in events(app, "cohort.members_added")]
    assert added == [
        {"count": 3, "sample": ["a", "b", "c"], "source": "import"},
        {"count": 1, "sample": ["d"], "source": "import"},
    ]
    assert [e.after for e in events(app, "cohort.members_removed")] == [
        {"count": 1, "sample": ["a"], "source": "import"}
    ]


def test_members__listed__source_and_added_at(engineer, clock):
    create(engineer)
    members(engineer, "early", add=["u1"])
    [item] = engineer.get(f"{BASE}/early/members").json["items"]
    assert item["user_key"] == "u1"
    assert item["source"] == "import"
    assert item["added_at"].startswith(clock().isoformat()[:19])


def test_members__bulk_import__one_audit_event_with_sample_of_20(engineer, app):
    create(engineer)
    keys = [f"user-{n:04d}" for n in range(500)]
    assert members(engineer, "early", add=keys).json["added"] == 500
    [event] = events(app, "cohort.members_added")
    assert event.after == {"count": 500, "sample": keys[:20], "source": "import"}
    assert members(engineer, "early", remove=keys[:300]).json["removed"] == 300
    [event] = events(app, "cohort.members_removed")
    assert event.after["count"] == 300


def test_members__100k_import__all_stored_one_event(engineer, app, request, capsys):
    create(engineer)
    keys = [f"customer-{n:06d}@example.com" for n in range(100_000)]
    started = time.perf_counter()
    response = members(engineer, "early", add=keys)
    took = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json == {"added": 100_000, "removed": 0, "member_count": 100_000}
    again = time.perf_counter()
    assert members(engineer, "early", add=[*keys[:50_000], "new"]).json["added"] == 1
    took_again = time.perf_counter() - again
    with capsys.disabled():
        backend = request.node.callspec.params["database_url"]
        print(f"\n[{backend}] 100k import: {took:.2f}s; re-import 50k (+1 new): {took_again:.2f}s")
    assert len(events(app, "cohort.members_added")) == 2
    with app.extensions["flagsvc"].db.read() as session:
        assert session.scalar(select(func.count()).select_from(CohortMember)) == 100_001


def test_members__over_default_limit__413_names_field_and_limit(engineer):
    create(engineer)
    response = members(engineer, "early", add=[f"u{n}" for n in range(100_001)])
    assert response.status_code == 413
    assert response.json["code"] == 413 and "add" in response.json["message"]
    [reason] = response.json["errors"]["json"]["add"]
    assert "at most 100000 user keys per request (got 100001)" in reason
    response = members(engineer, "early", remove=[f"u{n}" for n in range(100_001)])
    assert response.status_code == 413
    assert "100000" in response.json["errors"]["json"]["remove"][0]


@pytest.mark.parametrize("app_config", [{"max_members_per_request": 5}])
def test_members__over_configured_limit__413_and_nothing_stored(engineer):
    create(engineer)
    assert members(engineer, "early", add=[f"u{n}" for n in range(5)]).status_code == 200
    response = members(engineer, "early", add=[f"v{n}" for n in range(6)])
    assert response.status_code == 413
    assert "at most 5 user keys" in response.json["errors"]["json"]["add"][0]
    assert engineer.get(f"{BASE}/early").json["member_count"] == 5


def test_members__over_ceiling_in_service__too_large_error(engineer, app, clock):
    create(engineer)
    with pytest.raises(TooLargeError) as raised, app.extensions["flagsvc"].db.write() as s:
        cohorts.change_members(s, sdk_change(clock), "early", ["u"] * 1_000_001, [])
    assert raised.value.field == "add" and raised.value.limit == 1_000_000


def test_body__over_16_mib__413_in_the_common_error_shape(engineer):
    create(engineer)
    body = json.dumps({"add": ["k" * 200] * 90_000}).encode()  # 18.2 MB
    assert len(body) > 16 * 2**20
    response = engineer.post(
        f"{BASE}/early/members", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json["code"] == 413 and response.json["status"] == "Request Entity Too Large"
    assert response.json["limit_bytes"] == 16 * 2**20
    assert "16777216 bytes" in response.json["message"]


@pytest.mark.parametrize("app_config", [{"max_body_bytes": 2048}])
def test_body__over_configured_limit__413_on_any_endpoint(engineer):
    response = engineer.post(BASE, json={"key": "big", "name": "x" * 4096})
    assert response.status_code == 413
    assert response.json["limit_bytes"] == 2048


def test_members__nothing_to_do__422_names_add_and_remove(engineer):
    create(engineer)
    response = engineer.post(f"{BASE}/early/members", json={})
    assert response.status_code == 422
    assert {"add", "remove"} <= set(response.json["errors"]["json"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"add": ["ok", ""]}, "add"),
        ({"add": ["k" * 257]}, "add"),
        ({"add": ["ok", 5]}, "add"),
        ({"add": [None]}, "add"),
        ({"remove": ["a\x00"]}, "remove"),
        ({"add": ["a\ud800b"]}, "add"),
        ({"add": "u1"}, "add"),
        ({"add": {"u1": True}}, "add"),
        ({"remove": None}, "remove"),
        ({"add": ["u1"], "members": ["u2"]}, "members"),
        ({"add": ["u1", "u2"], "remove": ["u2"]}, "remove"),
    ],
)
def test_members__bad_input__422_names_field_nothing_applied(engineer, app, body, field):
    create(engineer)
    response = engineer.post(f"{BASE}/early/members", json=body)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]
    assert engineer.get(f"{BASE}/early").json["member_count"] == 0
    assert events(app, "cohort.members_added") == []


def test_members__bad_key_at_index__error_names_index(engineer):
    create(engineer)
    response = members(engineer, "early", add=["ok", "fine", ""])
    assert "2" in response.json["errors"]["json"]["add"]


def test_members__256_char_key__accepted(engineer):
    create(engineer)
    assert members(engineer, "early", add=["k" * 256]).json["added"] == 1


def test_members__unknown_cohort__404(engineer):
    assert members(engineer, "nope", add=["u1"]).status_code == 404


def test_members__stale_optional_if_match__412_nothing_applied(engineer):
    create(engineer)
    stale = engineer.get(f"{BASE}/early").headers["ETag"]
    etag = {"If-Match": stale}
    engineer.patch(f"{BASE}/early", json={"name": "Renamed"}, headers=etag)
    assert members(engineer, "early", add=["u1"], headers=etag).status_code == 412
    current = {"If-Match": engineer.get(f"{BASE}/early").headers["ETag"]}
    assert members(engineer, "early", add=["u1"], headers=current).status_code == 200
    assert engineer.get(f"{BASE}/early").json["member_count"] == 1


def test_members__paged__every_member_once_in_order(engineer):
    create(engineer)
    keys = [f"user-{n:03d}" for n in range(120)] + ["Zed", "álvaro", "日本", "a b", "ä", "Ä"]
    members(engineer, "early", add=keys)
    for limit in (1, 7, 500):
        seen = all_member_keys(engineer, "early", limit)
        assert len(seen) == len(set(seen)) == len(keys)
        assert set(seen) == set(keys)
    page = engineer.get(f"{BASE}/early/members", query_string={"limit": 10})
    assert len(page.json["items"]) == 10


def test_members__paging_cursor_of_long_unicode_key__round_trips(engineer):
    create(engineer)
    keys = ["é" * 256, "ü" * 256, "z"]
    members(engineer, "early", add=keys)
    assert sorted(all_member_keys(engineer, "early", 1)) == sorted(keys)


@pytest.mark.parametrize("cursor", ["%%%", "cDE", "dQ", "eHl6", "!!!!", "a" * 1401])
def test_members__forged_cursor__422_names_cursor(engineer, cursor):
    create(engineer)
    response = engineer.get(f"{BASE}/early/members", query_string={"cursor": cursor})
    assert response.status_code == 422
    assert "cursor" in response.json["errors"]["query"]


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 501}, {"limit": "x"}, {"page": 2}])
def test_members__bad_paging_args__422(engineer, query):
    create(engineer)
    assert engineer.get(f"{BASE}/early/members", query_string=query).status_code == 422


# --- opt-in through the service (the SDK endpoints call these) --------------------


def _joining(user_key: str, cohort: str = "early") -> cohorts.Membership:
    """Through a production SDK key."""
    return cohorts.Membership(cohort, user_key, "production")


def _used_in_production(engineer, cohort: str = "early") -> None:
    """An opt-in cohort production's SDK keys may enrol users in: a flag uses it there."""
    create_flag(engineer, "opt-in-flag")
    state = "/api/v1/flags/opt-in-flag/environments/production"
    etag = {"If-Match": engineer.get(state).headers["ETag"]}
    used = engineer.put(f"{state}/cohorts", json={"cohorts": [cohort]}, headers=etag)
    assert used.status_code == 200


def test_enroll__opt_in_cohort__member_once_audited(engineer, app, clock):
    create(engineer, opt_in=True)
    _used_in_production(engineer)
    database = app.extensions["flagsvc"].db
    with database.write() as session:
        assert cohorts.enroll(session, sdk_change(clock), _joining("u1")) is True
    with database.write() as session:
        assert cohorts.enroll(session, sdk_change(clock), _joining("u1")) is False
    [item] = engineer.get(f"{BASE}/early/members").json["items"]
    assert (item["user_key"], item["source"]) == ("u1", "opt_in")
    [event] = events(app, "cohort.member_enrolled")
    assert event.after == {"user_key": "u1", "source": "opt_in"}
    assert event.actor_role == "sdk"


def test_leave__member__removed_once_audited(engineer, app, clock):
    create(engineer, opt_in=True)
    _used_in_production(engineer)
    members(engineer, "early", add=["u1"])
    database = app.extensions["flagsvc"].db
    with database.write() as session:
        assert cohorts.leave(session, sdk_change(clock), _joining("u1")) is True
    with database.write() as session:
        assert cohorts.leave(session, sdk_change(clock), _joining("u1")) is False
    assert engineer.get(f"{BASE}/early").json["member_count"] == 0
    [event] = events(app, "cohort.member_left")
    assert event.before == {"user_key": "u1", "source": "import"}
    assert event.after == {"user_key": "u1", "source": "opt_in"}


@pytest.mark.parametrize("call", [cohorts.enroll, cohorts.leave])
def test_opt_in_calls__cohort_not_opt_in__invalid_field_cohort(engineer, app, clock, call):
    create(engineer, opt_in=False)
    _used_in_production(engineer)
    with pytest.raises(InvalidFieldError) as raised, app.extensions["flagsvc"].db.write() as s:
        call(s, sdk_change(clock), _joining("u1"))
    assert raised.value.field == "cohort"
    assert events(app, "cohort.member_enrolled") == []


@pytest.mark.parametrize("call", [cohorts.enroll, cohorts.leave])
def test_opt_in_calls__cohort_not_used_in_the_key_environment__permission_denied(
    engineer, app, clock, call
):
    create(engineer, opt_in=True)
    _used_in_production(engineer)
    elsewhere = cohorts.Membership("early", "u1", "development")
    with pytest.raises(PermissionDeniedError) as raised, app.extensions["flagsvc"].db.write() as s:
        call(s, sdk_change(clock), elsewhere)
    assert "'development'" in raised.value.message
    assert events(app, "cohort.member_enrolled") == []


@pytest.mark.parametrize("user_key", ["", "k" * 257, "a\x00", "\ud800"])
def test_enroll__bad_user_key__invalid_field(engineer, app, clock, user_key):
    create(engineer, opt_in=True)
    with pytest.raises(InvalidFieldError), app.extensions["flagsvc"].db.write() as session:
        cohorts.enroll(session, sdk_change(clock), _joining(user_key))


def test_enroll__unknown_cohort__not_found(app, clock):
    with pytest.raises(NotFoundError), app.extensions["flagsvc"].db.write() as session:
        cohorts.enroll(session, sdk_change(clock), _joining("u1", "nope"))


def test_members__changed__cohort_version_and_etag_unchanged(engineer, clock, app):
    create(engineer, opt_in=True)
    _used_in_production(engineer)
    etag = engineer.get(f"{BASE}/early").headers["ETag"]
    members(engineer, "early", add=["u1"])
    with app.extensions["flagsvc"].db.write() as session:
        cohorts.enroll(session, sdk_change(clock), _joining("u2"))
    response = engineer.patch(f"{BASE}/early", json={"name": "N"}, headers={"If-Match": etag})
    assert response.status_code == 200


def test_openapi__cohort_paths__documented(viewer):
    spec = viewer.get("/api/v1/openapi.json").json
    paths = {f"{BASE}", f"{BASE}/{{cohort_key}}", f"{BASE}/{{cohort_key}}/members"}
    assert paths <= set(spec["paths"])


def test_create_cohort__engine_refuses_rule__422_names_rule_index(engineer, monkeypatch):
    def validate_rule(rule):
        return ["values[0]: not semver", "odd"] if rule["op"] == "semver_gte" else []

    monkeypatch.setattr(cohorts_api, "validate_rule", validate_rule)
    bad = {"attribute": "app_version", "op": "semver_gte", "values": ["x"]}
    response = engineer.post(BASE, json=cohort_body(rules=[RULE, bad]))
    assert response.status_code == 422
    expected = {"values": ["values[0]: not semver"], "_schema": ["odd"]}
    assert response.json["errors"]["json"]["rules"] == {"1": expected}


def test_members__concurrent_overlapping_imports__exact_counts_valid_chain(engineer, app, clock):
    create(engineer, opt_in=True)
    _used_in_production(engineer)
    database = app.extensions["flagsvc"].db
    batches = [
        [f"u{n:05d}" for n in range(start, start + 3_000)] for start in range(0, 8_000, 1_000)
    ]

    def run(keys: list[str]) -> int:
        with database.write() as session:
            enrolled = cohorts.enroll(session, sdk_change(clock), _joining(f"solo-{keys[0]}"))
            result = cohorts.change_members(session, sdk_change(clock), "early", keys, [])
            return result.added + int(enrolled)

    with ThreadPoolExecutor(max_workers=4) as pool:
        added = sum(pool.map(run, batches))
    union = {key for batch in batches for key in batch}
    assert added == len(union) + len(batches)
    assert engineer.get(f"{BASE}/early").json["member_count"] == len(union) + len(batches)
    assert engineer.get("/api/v1/audit/verify").json["valid"] is True


# --- delete ---------------------------------------------------------------------------


def test_delete_cohort__unused__204_members_gone_and_audited(engineer, app):
    create(engineer, "old", rules=[{"attribute": "plan", "op": "in", "values": ["beta"]}])
    members(engineer, "old", add=["u1", "u2"])
    response = engineer.delete(f"{BASE}/old")
    assert response.status_code == 204
    assert engineer.get(f"{BASE}/old").status_code == 404
    with app.extensions["flagsvc"].db.read() as session:
        assert session.scalar(select(func.count()).select_from(CohortMember)) == 0
    [event] = events(app, "cohort.deleted")
    assert event.before["key"] == "old" and event.before["members"] == 2 and event.after is None


def test_delete_cohort__used_by_a_flag__409_names_it_and_changes_nothing(engineer, app):
    create(engineer)
    _used_in_production(engineer)
    response = engineer.delete(f"{BASE}/early")
    assert response.status_code == 409
    assert "opt-in-flag in production" in json.dumps(response.json)
    assert engineer.get(f"{BASE}/early").status_code == 200
    assert events(app, "cohort.deleted") == []


def test_delete_cohort__unknown__404_and_viewer__403(engineer, viewer):
    assert engineer.delete(f"{BASE}/nope").status_code == 404
    create(engineer)
    assert viewer.delete(f"{BASE}/early").status_code == 403
