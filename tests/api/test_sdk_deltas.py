"""Patch answers of ``GET /sdk/v1/snapshot?since=`` in-process, on SQLite and PostgreSQL.

The property: after any sequence of changes, an SDK that applies the patches it is
given holds exactly the full snapshot. Plus the protocol's edges: old SDKs get full
snapshots, ETags and 304s as before, a wrong base or an unknown version gets the full
snapshot, a malformed ``since`` a 422 naming it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import apply_patches
from flagsvc_sdk.engine import dump_snapshot
from flagsvc_sdk.engine import is_patch_document
from flagsvc_sdk.engine import load_snapshot

from flagsvc import create_app
from flagsvc.delivery import parts
from tests.conftest import Caller
from tests.conftest import create_flag

FLAGS = ("d-one", "d-two", "d-three")
COHORTS = ("d-beta", "d-nl", "d-vip")
DELTA = {"Flagsvc-Delta": "1"}
Doc = dict[str, Any]


def _state(flag: str) -> str:
    return f"/api/v1/flags/{flag}/environments/production"


def _canonical(doc: Doc) -> Doc:
    """Member and exclusion order is the database's in one, sorted in the other."""
    doc = json.loads(json.dumps(doc))
    for cohort in doc["cohorts"].values():
        cohort["members"] = sorted(cohort["members"])
    for flag in doc["flags"].values():
        flag["exclusions"] = sorted(flag["exclusions"])
    return doc


class Sdk:
    """What an SDK does with the answers: holds a snapshot, applies patches."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.held: Snapshot | None = None
        self.etag: str | None = None
        self.content_hash: str | None = None
        self.patches = 0

    def poll(self) -> None:
        headers = dict(DELTA)
        query: Doc = {}
        if self.held is not None and self.etag and self.content_hash:
            headers["If-None-Match"] = self.etag
            query = {"since": self.held.version, "base": self.content_hash}
        answer = self.caller.get("/sdk/v1/snapshot", headers=headers, query_string=query)
        assert answer.status_code in (200, 304), answer.json
        if answer.status_code == 304:
            return
        doc = answer.json
        if is_patch_document(doc):
            assert self.held is not None
            self.held = apply_patches(self.held, doc)
            self.patches += 1
        else:
            self.held = load_snapshot(doc)
        self.etag, self.content_hash = (
            answer.headers["ETag"],
            answer.headers["Flagsvc-Content-Hash"],
        )


def _change(rng: random.Random, engineer: Caller) -> int:
    """One random change an engineer may make; its status (4xx refusals are fine)."""
    flag, cohort = rng.choice(FLAGS), rng.choice(COHORTS)
    users = [f"u{rng.randrange(30)}" for _ in range(rng.randrange(1, 4))]
    changes: list[Callable[[], Any]] = [
        lambda: engineer.post(f"/api/v1/cohorts/{cohort}/members", json={"add": users}),
        lambda: engineer.post(f"/api/v1/cohorts/{cohort}/members", json={"remove": users}),
        lambda: engineer.post(f"{_state(flag)}/stage", json={"stage": "early_access"}),
        lambda: engineer.post(
            f"{_state(flag)}/stage",
            json={"stage": "general", "rollout_percent": rng.choice([0, 10, 50])},
        ),
        lambda: engineer.post(f"{_state(flag)}/stage", json={"stage": "off"}),
        lambda: engineer.post(f"{_state(flag)}/{rng.choice(['kill', 'resume'])}"),
        lambda: engineer.put(f"{_state(flag)}/exclusions", json={"users": users}),
        lambda: _set_cohorts(engineer, flag, rng.sample(COHORTS, rng.randrange(0, 3))),
        lambda: _set_rules(engineer, cohort, rng.choice(["NL", "BE", "DE"])),
    ]
    status: int = rng.choice(changes)().status_code
    assert status < 500
    return status


def _set_cohorts(engineer: Caller, flag: str, cohorts: list[str]) -> Any:
    etag = engineer.get(_state(flag)).headers["ETag"]
    path = f"{_state(flag)}/cohorts"
    return engineer.put(path, json={"cohorts": cohorts}, headers={"If-Match": etag})


def _set_rules(engineer: Caller, cohort: str, country: str) -> Any:
    etag = engineer.get(f"/api/v1/cohorts/{cohort}").headers["ETag"]
    rules = [{"attribute": "country", "op": "in", "values": [country]}]
    path = f"/api/v1/cohorts/{cohort}"
    return engineer.patch(path, json={"rules": rules}, headers={"If-Match": etag})


def _setup(engineer: Caller) -> None:
    for flag in FLAGS:
        create_flag(engineer, flag)
    for cohort in COHORTS:
        body = {"key": cohort, "name": cohort}
        assert engineer.post("/api/v1/cohorts", json=body).status_code == 201


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_patches__random_changes__applied_patches_equal_the_full_snapshot(
    sdk: Caller, engineer: Caller, seed: int
) -> None:
    # Given three flags, three cohorts and an SDK holding the snapshot
    _setup(engineer)
    rng = random.Random(seed)
    client = Sdk(sdk)
    client.poll()
    for _ in range(40):
        # When any change is made (and sometimes two before the SDK polls)
        _change(rng, engineer)
        if rng.random() < 0.3:
            _change(rng, engineer)
        client.poll()
        # Then what the SDK holds is the full snapshot
        full = sdk.get("/sdk/v1/snapshot").json
        assert client.held is not None
        assert _canonical(dump_snapshot(client.held)) == _canonical(full)
    assert client.patches >= 10  # the property was about patches, not full downloads


@pytest.mark.parametrize("seed", [1, 2])
def test_patches__member_changes_at_scale__applied_patches_equal_the_full_snapshot(
    sdk: Caller, engineer: Caller, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a flag on a 2,000-member cohort, kept by the build in chunks of 16 members
    monkeypatch.setattr(parts.cohort, "CHUNK", 16)
    _setup(engineer)
    rng = random.Random(seed)
    pool = [f"m{i:05d}" for i in range(0, 9000, 3)]
    members = rng.sample(pool, 2000)
    engineer.post(f"/api/v1/cohorts/{COHORTS[0]}/members", json={"add": members})
    _set_cohorts(engineer, FLAGS[0], [COHORTS[0]])
    engineer.post(f"{_state(FLAGS[0])}/stage", json={"stage": "early_access"})
    client = Sdk(sdk)
    client.poll()
    for _ in range(25):
        # When members are added and removed, a few (the audit names them) or many
        many = rng.random() < 0.2
        add = rng.sample(pool, rng.randint(21, 80) if many else rng.randint(1, 3))
        remove = rng.sample(pool, rng.randint(21, 80) if many else rng.randint(0, 2))
        remove = [key for key in remove if key not in add]
        body = {"add": add, "remove": remove}
        assert engineer.post(f"/api/v1/cohorts/{COHORTS[0]}/members", json=body).status_code == 200
        client.poll()
        # Then what the SDK holds is the full snapshot
        full = sdk.get("/sdk/v1/snapshot").json
        assert client.held is not None
        assert _canonical(dump_snapshot(client.held)) == _canonical(full)
    assert client.patches >= 20


def _held(sdk: Caller) -> tuple[Doc, str, str]:
    answer = sdk.get("/sdk/v1/snapshot", headers=DELTA)
    return answer.json, answer.headers["ETag"], answer.headers["Flagsvc-Content-Hash"]


def _big_cohort(engineer: Caller) -> None:
    """A flag on a 500-member cohort: its snapshot is larger than a small patch."""
    _setup(engineer)
    members = [f"m{i:04d}" for i in range(500)]
    engineer.post(f"/api/v1/cohorts/{COHORTS[0]}/members", json={"add": members})
    _set_cohorts(engineer, FLAGS[0], [COHORTS[0]])


def test_patch__member_added__steps_carry_only_that_member(sdk: Caller, engineer: Caller) -> None:
    # Given an SDK holding a snapshot with a 500-member cohort
    _big_cohort(engineer)
    doc, _etag, base = _held(sdk)
    # When one member is added
    engineer.post(f"/api/v1/cohorts/{COHORTS[0]}/members", json={"add": ["late"]})
    answer = sdk.get(
        "/sdk/v1/snapshot", headers=DELTA, query_string={"since": doc["version"], "base": base}
    )
    # Then the answer is a patch with that member alone
    assert answer.status_code == 200
    patch = answer.json
    assert patch["from_version"] == doc["version"]
    assert [step["members_added"] for step in patch["patches"]] == [{COHORTS[0]: ["late"]}]
    assert answer.headers["Vary"].endswith("Flagsvc-Delta")
    full = sdk.get("/sdk/v1/snapshot").json
    assert patch["version"] == full["version"]
    assert len(answer.data) * 10 < len(json.dumps(full))


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, "since"),  # an SDK without the capability
        (DELTA, "wrong-base"),  # other content at that version
        (DELTA, "unknown-version"),
    ],
)
def test_patch__cannot_or_must_not__full_snapshot(
    sdk: Caller, engineer: Caller, headers: dict[str, str], query: str
) -> None:
    _big_cohort(engineer)
    doc, _etag, base = _held(sdk)
    engineer.post(f"/api/v1/cohorts/{COHORTS[0]}/members", json={"add": ["late"]})
    asked: Doc = {"since": doc["version"], "base": base}
    if query == "wrong-base":
        asked["base"] = "0" * 64
    if query == "unknown-version":
        asked["since"] = 1
    answer = sdk.get("/sdk/v1/snapshot", headers=headers, query_string=asked)
    assert answer.status_code == 200
    assert "flags" in answer.json and "patches" not in answer.json


def test_patch__etag_current__304_as_before(sdk: Caller, engineer: Caller) -> None:
    _big_cohort(engineer)
    doc, etag, base = _held(sdk)
    headers = {**DELTA, "If-None-Match": etag}
    asked = {"since": doc["version"], "base": base}
    answer = sdk.get("/sdk/v1/snapshot", headers=headers, query_string=asked)
    assert answer.status_code == 304


def test_patch__since_the_version_held_without_etag__empty_patch(
    sdk: Caller, engineer: Caller
) -> None:
    _big_cohort(engineer)
    doc, _etag, base = _held(sdk)
    asked = {"since": doc["version"], "base": base}
    answer = sdk.get("/sdk/v1/snapshot", headers=DELTA, query_string=asked)
    assert answer.json["patches"] == [] and answer.json["version"] == doc["version"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("since=abc", "since"), ("since=-1", "since"), ("since=1&base=", "base")],
)
def test_patch__malformed_query__422_naming_the_field(sdk: Caller, query: str, field: str) -> None:
    answer = sdk.get(f"/sdk/v1/snapshot?{query}", headers=DELTA)
    assert answer.status_code == 422
    assert field in json.dumps(answer.json)


def _instance(database_url: str, redis_url: str) -> Any:
    config = {"database_url": database_url, "testing": True, "redis_url": redis_url}
    return create_app(config)


def _closed(*apps: Any) -> None:
    for instance in apps:
        instance.extensions["flagsvc"].close()


def test_patch__another_instance_or_a_restart__answered_from_the_shared_steps(
    database_url: str, redis_url: str, secrets: dict[str, str]
) -> None:
    """Behind a balancer an SDK's next poll may reach an instance that never held its
    version (or one started since): with Redis that instance answers the patch too."""
    a = _instance(database_url, redis_url)
    b = _instance(database_url, redis_url)
    try:
        engineer = Caller(a.test_client(), secrets["engineer"])
        _big_cohort(engineer)
        doc, _etag, base = _held(Caller(a.test_client(), secrets["sdk:production"]))
        engineer.post(f"/api/v1/cohorts/{COHORTS[0]}/members", json={"add": ["late"]})
        engineer.post(f"/api/v1/cohorts/{COHORTS[0]}/members", json={"remove": ["m0007"]})
        _held(Caller(a.test_client(), secrets["sdk:production"]))  # A builds both versions
        c = _instance(database_url, redis_url)  # started after them
        try:
            for other in (b, c):
                sdk = Caller(other.test_client(), secrets["sdk:production"])
                query = {"since": doc["version"], "base": base}
                answer = sdk.get("/sdk/v1/snapshot", headers=DELTA, query_string=query)
                assert answer.status_code == 200
                assert is_patch_document(answer.json), "a full snapshot"
                held = apply_patches(load_snapshot(doc), answer.json)
                full = sdk.get("/sdk/v1/snapshot").json
                assert _canonical(dump_snapshot(held)) == _canonical(full)
                wrong = {**query, "base": "0" * 64}
                answer = sdk.get("/sdk/v1/snapshot", headers=DELTA, query_string=wrong)
                assert not is_patch_document(answer.json)
        finally:
            _closed(c)
    finally:
        _closed(a, b)
