"""The readiness gate on the paths around stage moves: catch-all cohorts and readiness loss.

Each test names the path; the SDK snapshot, evaluated by the engine, shows who gets the
flag. ``tests/api/test_gate_machine.py`` drives random sequences of all of these.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot
from sqlalchemy import select

from flagsvc.storage.models import Cohort
from flagsvc.storage.models import Environment
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort
from tests.conftest import Caller
from tests.conftest import create_flag

FLAG = "/api/v1/flags/checkout"
PRODUCTION = f"{FLAG}/environments/production"
STAGING = f"{FLAG}/environments/staging"
ITEMS = ["docs", "announcement", "support_enablement", "sales_briefing"]
EVERYONE = [{"attribute": "key", "op": "neq", "values": ["\u0001never"]}]
DUTCH = [{"attribute": "country", "op": "eq", "values": ["NL"]}]


@pytest.fixture
def flag(engineer) -> None:
    create_flag(engineer, "checkout")


def _cohort(engineer, key: str, rules: list[dict[str, Any]]) -> None:
    body = {"key": key, "name": key, "rules": rules}
    assert engineer.post("/api/v1/cohorts", json=body).status_code == 201


def _attach(engineer, path: str, *cohorts: str) -> Any:
    etag = engineer.get(path).headers["ETag"]
    return engineer.put(
        f"{path}/cohorts", json={"cohorts": list(cohorts)}, headers={"If-Match": etag}
    )


def _move(engineer, path: str, stage: str, percent: float | None = None) -> Any:
    body: dict[str, Any] = {"stage": stage}
    if percent is not None:
        body["rollout_percent"] = percent
    return engineer.post(f"{path}/stage", json=body)


def _mark(marketing, item: str, done: bool) -> Any:
    return marketing.put(f"{FLAG}/readiness/{item}", json={"done": done})


def _ready(marketing) -> None:
    for item in ITEMS:
        assert _mark(marketing, item, True).status_code == 200


def _on_for_random_users(sdk, users: int = 200) -> int:
    snapshot = load_snapshot(sdk.get("/sdk/v1/snapshot").json)
    keys = [str(uuid.uuid4()) for _ in range(users)]
    return sum(evaluate(snapshot, "checkout", {"key": key}).enabled for key in keys)


# --- catch-all cohorts ----------------------------------------------------------------


def test_catch_all__attached_in_gated_production_before_ready__409_and_nobody_gets_it(
    flag, engineer, sdk
):
    # Given the cohort, and the flag in early access in production (0 of 4 ready)
    _cohort(engineer, "everyone", EVERYONE)
    assert _move(engineer, PRODUCTION, "early_access").status_code == 200
    # When an engineer makes it the early-access cohort there
    response = _attach(engineer, PRODUCTION, "everyone")
    # Then 409 naming the cohort and why, the cohorts unchanged, nobody random on
    assert response.status_code == 409, response.json
    message = response.json["message"]
    assert "'everyone' is a catch-all" in message and "random key" in message
    assert response.json["missing_readiness"] == ITEMS
    assert engineer.get(PRODUCTION).json["cohorts"] == []
    assert _on_for_random_users(sdk) == 0


def test_catch_all__cohort_representation__says_why_or_null(flag, engineer):
    _cohort(engineer, "everyone", EVERYONE)
    _cohort(engineer, "dutch", DUTCH)
    assert "random key" in engineer.get("/api/v1/cohorts/everyone").json["catch_all"]
    assert engineer.get("/api/v1/cohorts/dutch").json["catch_all"] is None
    listed = {c["key"]: c["catch_all"] for c in engineer.get("/api/v1/cohorts").json["items"]}
    assert listed["dutch"] is None and listed["everyone"]


def test_catch_all__attribute_negations_only__409(flag, engineer):
    _cohort(engineer, "not-free", [{"attribute": "plan", "op": "not_in", "values": ["free"]}])
    response = _attach(engineer, PRODUCTION, "not-free")
    assert (
        response.status_code == 409
        and "excludes only the values it lists" in response.json["message"]
    )


def test_catch_all__ungated_environment_or_ready_flag__allowed(
    flag, engineer, marketing, client, secrets
):
    _cohort(engineer, "everyone", EVERYONE)
    assert _attach(engineer, STAGING, "everyone").status_code == 200
    _ready(marketing)
    assert _attach(engineer, PRODUCTION, "everyone").status_code == 200


def test_catch_all__bounded_cohort__attached_and_only_its_users_on(flag, engineer, sdk):
    _cohort(engineer, "dutch", DUTCH)
    assert _move(engineer, PRODUCTION, "early_access").status_code == 200
    assert _attach(engineer, PRODUCTION, "dutch").status_code == 200
    assert _on_for_random_users(sdk) == 0
    snapshot = load_snapshot(sdk.get("/sdk/v1/snapshot").json)
    assert evaluate(snapshot, "checkout", {"key": "u", "country": "NL"}).enabled


def test_catch_all__rules_edited_into_one_while_held__409_names_flag_and_environment(
    flag, engineer, sdk
):
    _cohort(engineer, "dutch", DUTCH)
    _move(engineer, PRODUCTION, "early_access")
    assert _attach(engineer, PRODUCTION, "dutch").status_code == 200
    etag = engineer.get("/api/v1/cohorts/dutch").headers["ETag"]
    response = engineer.patch(
        "/api/v1/cohorts/dutch", json={"rules": EVERYONE}, headers={"If-Match": etag}
    )
    assert response.status_code == 409, response.json
    assert (
        "catch-all" in response.json["message"]
        and "checkout in production" in response.json["message"]
    )
    assert engineer.get("/api/v1/cohorts/dutch").json["rules"] == DUTCH
    assert _on_for_random_users(sdk) == 0


def test_catch_all__rules_edited_where_ungated_or_ready__allowed(flag, engineer, marketing):
    _cohort(engineer, "dutch", DUTCH)
    _attach(engineer, STAGING, "dutch")
    etag = engineer.get("/api/v1/cohorts/dutch").headers["ETag"]
    edit = {"rules": EVERYONE}
    assert (
        engineer.patch("/api/v1/cohorts/dutch", json=edit, headers={"If-Match": etag}).status_code
        == 200
    )


def test_catch_all__attached_while_ready_then_item_unmarked__409_readiness_kept(
    flag, engineer, marketing, sdk
):
    _cohort(engineer, "everyone", EVERYONE)
    _ready(marketing)
    _move(engineer, PRODUCTION, "early_access")
    assert _attach(engineer, PRODUCTION, "everyone").status_code == 200
    response = _mark(marketing, "docs", False)
    assert response.status_code == 409, response.json
    assert "'everyone' is a catch-all" in response.json["message"]
    assert marketing.get(f"{FLAG}/readiness").json["ready"] is True
    # taking the cohort off first makes the unmark possible
    assert _attach(engineer, PRODUCTION).status_code == 200
    assert _mark(marketing, "docs", False).status_code == 200
    assert _on_for_random_users(sdk) == 0


def _attach_behind_the_api(app, cohort_key: str) -> None:
    """A catch-all attached in a database written before these checks existed."""
    with app.extensions["flagsvc"].db.write() as session:
        cohort_id = session.scalar(select(Cohort.id).where(Cohort.key == cohort_key))
        state_id = session.scalar(
            select(FlagState.id)
            .join(Environment, Environment.id == FlagState.environment_id)
            .where(Environment.key == "production")
        )
        session.add(FlagStateCohort(flag_state_id=state_id, cohort_id=cohort_id, position=0))


def test_catch_all__already_attached_then_early_access__409(app, flag, engineer):
    _cohort(engineer, "everyone", EVERYONE)
    _attach_behind_the_api(app, "everyone")
    response = _move(engineer, PRODUCTION, "early_access")
    assert response.status_code == 409 and "catch-all" in response.json["message"]
    assert engineer.get(PRODUCTION).json["stage"] == "off"


def test_catch_all__already_attached_to_a_killed_flag_then_resume__409(app, flag, engineer):
    _cohort(engineer, "everyone", EVERYONE)
    assert _move(engineer, PRODUCTION, "early_access").status_code == 200
    assert engineer.post(f"{PRODUCTION}/kill").status_code == 200
    _attach_behind_the_api(app, "everyone")
    response = engineer.post(f"{PRODUCTION}/resume")
    assert response.status_code == 409 and "catch-all" in response.json["message"]
    assert engineer.get(PRODUCTION).json["killed"] is True


# --- readiness lost after general rollout started ---------------------------------------


@pytest.mark.parametrize(
    ("stage", "percent"), [("general", 50), ("general", 0), ("released", None)]
)
def test_readiness_loss__general_exposure_in_gated_environment__409_names_it(
    flag, engineer, marketing, stage, percent
):
    _ready(marketing)
    assert _move(engineer, PRODUCTION, stage, percent).status_code == 200
    response = _mark(marketing, "docs", False)
    assert response.status_code == 409, response.json
    assert "'production'" in response.json["message"] and "Roll back" in response.json["message"]
    assert marketing.get(f"{FLAG}/readiness").json["ready"] is True


def test_readiness_loss__killed_in_general__still_409(flag, engineer, marketing):
    _ready(marketing)
    _move(engineer, PRODUCTION, "general", 100)
    assert engineer.post(f"{PRODUCTION}/kill").status_code == 200
    assert _mark(marketing, "docs", False).status_code == 409


def test_readiness_loss__required_item_added_while_released__409(flag, engineer, marketing):
    _ready(marketing)
    _move(engineer, PRODUCTION, "released")
    readiness = marketing.get(f"{FLAG}/readiness")
    items = [
        {"key": i["key"], "label": i["label"], "required": i["required"]}
        for i in readiness.json["items"]
    ]
    items.append({"key": "legal", "label": "Legal review", "required": True})
    response = marketing.put(
        f"{FLAG}/readiness", json={"items": items}, headers={"If-Match": readiness.headers["ETag"]}
    )
    assert response.status_code == 409 and "released" in response.json["message"]


def test_readiness_loss__after_rollback_or_only_ungated_general__allowed(flag, engineer, marketing):
    _ready(marketing)
    _move(engineer, STAGING, "released")
    _move(engineer, PRODUCTION, "general", 30)
    assert _mark(marketing, "docs", False).status_code == 409
    assert _move(engineer, PRODUCTION, "early_access").status_code == 200
    assert _mark(marketing, "docs", False).status_code == 200
    assert marketing.get(f"{FLAG}/readiness").json["ready"] is False


def test_readiness_loss__note_changed_without_unmarking__allowed(flag, engineer, marketing):
    _ready(marketing)
    _move(engineer, PRODUCTION, "released")
    response = marketing.put(f"{FLAG}/readiness/docs", json={"done": True, "note": "v2 due"})
    assert response.status_code == 200


# --- races: a rule edit against an attachment or a readiness loss ----------------------

ROUNDS = 12


def _race(client, secrets, first, second) -> tuple[int, int]:
    """Run two requests at once (each with its own client); their status codes."""
    barrier, codes = threading.Barrier(2), [0, 0]

    def run(index: int, role: str, request) -> None:
        caller = Caller(client.application.test_client(), secrets[role])
        barrier.wait()
        codes[index] = request(caller).status_code

    threads = [
        threading.Thread(target=run, args=(0, *first)),
        threading.Thread(target=run, args=(1, *second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return codes[0], codes[1]


def _set_rules(rules):
    def request(caller):
        etag = caller.get("/api/v1/cohorts/dutch").headers["ETag"]
        return caller.patch(
            "/api/v1/cohorts/dutch", json={"rules": rules}, headers={"If-Match": etag}
        )

    return request


def test_race__rule_edit_against_readiness_loss__never_both(
    flag, engineer, marketing, client, secrets, sdk
):
    _cohort(engineer, "dutch", DUTCH)
    _ready(marketing)
    _move(engineer, PRODUCTION, "early_access")
    assert _attach(engineer, PRODUCTION, "dutch").status_code == 200
    for _ in range(ROUNDS):
        edit, unmark = _race(
            client,
            secrets,
            ("engineer", _set_rules(EVERYONE)),
            ("marketing", lambda caller: _mark(caller, "docs", False)),
        )
        assert sorted((edit, unmark)) != [200, 200]
        assert (
            _on_for_random_users(sdk, 50) == 0 or marketing.get(f"{FLAG}/readiness").json["ready"]
        )
        if edit == 200:
            assert _set_rules(DUTCH)(engineer).status_code == 200
        if unmark == 200:
            assert _mark(marketing, "docs", True).status_code == 200


def test_race__rule_edit_against_attachment__never_both(flag, engineer, client, secrets, sdk):
    _cohort(engineer, "dutch", DUTCH)
    _move(engineer, PRODUCTION, "early_access")
    for _ in range(ROUNDS):
        edit, attach = _race(
            client,
            secrets,
            ("engineer", _set_rules(EVERYONE)),
            ("admin", lambda caller: _attach(caller, PRODUCTION, "dutch")),
        )
        assert sorted((edit, attach)) != [200, 200]
        assert _on_for_random_users(sdk, 50) == 0
        if attach == 200:
            assert _attach(engineer, PRODUCTION).status_code == 200
        if edit == 200:
            assert _set_rules(DUTCH)(engineer).status_code == 200
