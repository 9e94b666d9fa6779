"""SDKs that read only spec 1 (flagsvc-sdk 1.0.0) get spec 1: every flag spec 1 can say
exactly, answering what spec 2 answers; the others left out (the caller's default),
never a value meant for someone else. SDKs that say ``Flagsvc-Spec: 2`` get spec 2."""

from __future__ import annotations

import json

import pytest
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot

from tests.conftest import Caller
from tests.conftest import built_once
from tests.conftest import create_flag

OLD_SDK = {"User-Agent": "flagsvc-python-sdk/1.0.0"}
NEW_SDK = {"User-Agent": "flagsvc-python-sdk/1.0.0", "Flagsvc-Spec": "2"}
STATE = "/api/v1/flags/{}/environments/staging"  # not gated: ramps need no readiness


def _typed(engineer, key: str, off: str | None, values: dict[str, str]) -> None:
    flag = create_flag(engineer, f"{key}-seed")
    body = {"key": key, "name": key, "flow_item": "feature", "key_result_id": flag["key_result_id"],
            "value_type": "string", "on_variation": "v2", "off_variation": off,
            "variations": [{"key": k, "value": v} for k, v in values.items()]}  # fmt: skip
    assert engineer.post("/api/v1/flags", json=body).status_code == 201


def _move(engineer, key: str, **body) -> None:
    assert engineer.post(f"{STATE.format(key)}/stage", json=body).status_code == 200


@pytest.fixture
def sdk(client, secrets) -> Caller:
    """An SDK key for staging."""
    return Caller(client, secrets["sdk:staging"])


@pytest.fixture
def flags(engineer, clock):
    """A boolean flag at 50 %, a string flag spec 1 can say (no off value) released to a
    cohort, one with an off value and one with a cohort's own variation (made once per
    process on SQLite: ``built_once``)."""
    built_once(engineer.client.application, clock, "spec1_flags", lambda: _make_flags(engineer))


def _make_flags(engineer) -> None:
    create_flag(engineer, "toggle")
    _move(engineer, "toggle", stage="general", rollout_percent=50)
    assert engineer.post("/api/v1/cohorts", json={"key": "beta", "name": "Beta",
                         "rules": [{"attribute": "plan", "op": "in", "values": ["pro"]}]}).status_code == 201  # fmt: skip
    _typed(engineer, "layout", None, {"v2": "two"})
    _typed(engineer, "with-off", "v1", {"v1": "one", "v2": "two"})
    _typed(engineer, "per-cohort", None, {"v2": "two", "v3": "three"})
    for key, own in (("layout", {}), ("per-cohort", {"beta": "v3"})):
        path = STATE.format(key)
        etag = engineer.get(path).headers["ETag"]
        body = {"cohorts": ["beta"], "variations": own}
        assert (
            engineer.put(f"{path}/cohorts", json=body, headers={"If-Match": etag}).status_code
            == 200
        )
        _move(engineer, key, stage="general", rollout_percent=30)
    _move(engineer, "with-off", stage="early_access")


def test_old_sdk__spec_1_with_the_flags_it_can_say(sdk, flags):
    response = sdk.get("/sdk/v1/snapshot", headers=OLD_SDK)
    assert response.status_code == 200
    doc = response.json
    assert doc["spec_version"] == 1
    assert set(doc["flags"]) == {"toggle", "layout", "layout-seed",
                                 "with-off-seed", "per-cohort-seed"}  # fmt: skip
    assert doc["flags"]["toggle"]["payload"] is None and "type" not in doc["flags"]["toggle"]
    assert doc["flags"]["layout"]["payload"] == "two"
    assert set(doc["cohorts"]) == {"beta"}
    assert response.headers["ETag"].endswith('.s1"')
    load_snapshot(doc)  # a valid spec-1 document


def test_old_sdk__answers_what_spec_2_answers_for_every_flag_kept(sdk, flags):
    old = load_snapshot(sdk.get("/sdk/v1/snapshot", headers=OLD_SDK).json)
    new = load_snapshot(sdk.get("/sdk/v1/snapshot", headers=NEW_SDK).json)
    contexts = [{"key": f"user-{n}", "plan": plan} for n in range(200) for plan in ("pro", "free")]
    for key in old.index:
        for context in contexts:
            then, now = evaluate(old, key, context), evaluate(new, key, context)
            assert (then.enabled, then.value) == (now.enabled, now.value), (key, context)


def test_old_sdk__etag_of_its_own__304_only_for_the_same_spec(sdk, flags):
    old = sdk.get("/sdk/v1/snapshot", headers=OLD_SDK)
    again = sdk.get("/sdk/v1/snapshot", headers={**OLD_SDK, "If-None-Match": old.headers["ETag"]})
    assert again.status_code == 304
    other = sdk.get("/sdk/v1/snapshot", headers={**NEW_SDK, "If-None-Match": old.headers["ETag"]})
    assert other.status_code == 200 and other.json["spec_version"] == 2


@pytest.mark.parametrize("headers", [NEW_SDK, {}, {"User-Agent": "curl/8.5"}])
def test_current_readers__spec_2(sdk, flags, headers):
    doc = sdk.get("/sdk/v1/snapshot", headers=headers).json
    assert doc["spec_version"] == 2 and {"with-off", "per-cohort"} <= set(doc["flags"])


def test_spec_1_asked_explicitly__spec_1(sdk, flags):
    doc = sdk.get("/sdk/v1/snapshot", headers={"Flagsvc-Spec": "1"}).json
    assert doc["spec_version"] == 1 and "with-off" not in doc["flags"]


def test_unknown_spec__406_naming_the_header(sdk):
    response = sdk.get("/sdk/v1/snapshot", headers={"Flagsvc-Spec": "3"})
    assert response.status_code == 406
    assert (
        response.json["field"] == "Flagsvc-Spec"
        and "serves spec 1 and 2" in response.json["message"]
    )


def test_the_sdk_says_which_spec_it_reads():
    from flagsvc_sdk._transport import _options

    assert _options("http://x", "key", 1.0)["headers"]["Flagsvc-Spec"] == "2"
    json.dumps(_options("http://x", "key", 1.0)["headers"])  # plain strings only
