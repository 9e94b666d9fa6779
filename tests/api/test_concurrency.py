"""Eight threads changing stages and importing members at once.

On PostgreSQL this is real concurrency (row locks, the audit advisory lock); on
SQLite the same test shows write transactions queue instead of failing. Either way:
the final state is consistent, every applied change wrote exactly one audit event,
and the hash chain verifies.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from tests.conftest import Caller
from tests.conftest import create_flag

STAGE_THREADS = 4
MEMBER_THREADS = 4
MOVES_PER_THREAD = 12
BATCHES_PER_THREAD = 6
BATCH = 400
TARGETS = [
    {"stage": "early_access"},
    {"stage": "general", "rollout_percent": 10},
    {"stage": "general", "rollout_percent": 50},
    {"stage": "released"},
    {"stage": "off"},
]


@pytest.fixture
def release(engineer):
    create_flag(engineer, "busy-flag", name="Busy")
    assert (
        engineer.post(
            "/api/v1/cohorts", json={"key": "crowd", "name": "Crowd", "rules": [], "opt_in": False}
        ).status_code
        == 201
    )


def _move_stages(caller: Caller, seed: int, outcomes: list) -> None:
    chooser = random.Random(seed)
    for _ in range(MOVES_PER_THREAD):
        target = chooser.choice(TARGETS)
        response = caller.post("/api/v1/flags/busy-flag/environments/staging/stage", json=target)
        outcomes.append((response.status_code, target))


def _import_members(caller: Caller, seed: int, outcomes: list) -> None:
    chooser = random.Random(seed)
    for _ in range(BATCHES_PER_THREAD):
        start = chooser.randrange(0, 4000)
        keys = [f"user-{n}" for n in range(start, start + BATCH)]
        body = {"add": keys} if chooser.random() < 0.8 else {"remove": keys[:100]}
        response = caller.post("/api/v1/cohorts/crowd/members", json=body)
        outcomes.append((response.status_code, response.json))


def test_concurrent_stage_moves_and_imports__consistent_state_and_complete_audit(
    release, client, secrets, viewer
):
    stage_outcomes: list = []
    member_outcomes: list = []
    threads = [
        threading.Thread(
            target=_move_stages,
            args=(Caller(client.application.test_client(), secrets["engineer"]), i, stage_outcomes),
        )
        for i in range(STAGE_THREADS)
    ] + [
        threading.Thread(
            target=_import_members,
            args=(
                Caller(client.application.test_client(), secrets["admin"]),
                100 + i,
                member_outcomes,
            ),
        )
        for i in range(MEMBER_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Every request got a definite answer: applied (200) or refused as a no-op (409).
    assert Counter(status for status, _ in stage_outcomes).keys() <= {200, 409}
    assert all(status == 200 for status, _ in member_outcomes)
    applied_moves = sum(1 for status, _ in stage_outcomes if status == 200)
    stage_events = _events(viewer, "flag.stage_changed")
    assert len(stage_events) == applied_moves
    state = viewer.get("/api/v1/flags/busy-flag/environments/staging").json
    assert state["stage"] == stage_events[-1]["after"]["stage"]

    added = sum(body["added"] for _, body in member_outcomes)
    removed = sum(body["removed"] for _, body in member_outcomes)
    cohort = viewer.get("/api/v1/cohorts/crowd").json
    assert cohort["member_count"] == added - removed
    changed_batches = sum(1 for _, b in member_outcomes if b["added"]) + sum(
        1 for _, b in member_outcomes if b["removed"]
    )
    member_events = _events(viewer, "cohort.members_added") + _events(
        viewer, "cohort.members_removed"
    )
    assert len(member_events) == changed_batches
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True


def _events(viewer: Caller, action: str) -> list:
    events, cursor = [], None
    while True:
        query = f"/api/v1/audit?action={action}&limit=500" + (f"&cursor={cursor}" if cursor else "")
        body = viewer.get(query).json
        events += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return events


RACE_STATE = "/api/v1/flags/race-flag/environments/staging"


def _attach_and_delete_at_once(engineer: Caller, key: str) -> dict[str, int]:
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}
    etag = engineer.get(RACE_STATE).headers["ETag"]

    def attach() -> None:
        barrier.wait()
        response = engineer.put(
            f"{RACE_STATE}/cohorts", json={"cohorts": [key]}, headers={"If-Match": etag}
        )
        results["attach"] = response.status_code

    def remove() -> None:
        barrier.wait()
        results["delete"] = engineer.delete(f"/api/v1/cohorts/{key}").status_code

    threads = [threading.Thread(target=attach), threading.Thread(target=remove)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_cohort_deleted_while_being_attached__never_a_500_never_both(engineer):
    """Attaching reads the cohort under a share lock, so a delete either waits and finds it
    in use (409) or wins and the attach finds no such cohort (422): never a foreign-key
    error, and never an attachment to a cohort that is gone."""
    create_flag(engineer, "race-flag", name="Race")
    for n in range(6):
        key = f"race-{n}"
        body = {"key": key, "name": key, "rules": [], "opt_in": False}
        assert engineer.post("/api/v1/cohorts", json=body).status_code == 201
        results = _attach_and_delete_at_once(engineer, key)
        assert results.get("attach") in (200, 422), results
        assert results.get("delete") in (204, 409), results
        assert (results["attach"], results["delete"]) != (200, 204), results
        etag = engineer.get(RACE_STATE).headers["ETag"]
        engineer.put(f"{RACE_STATE}/cohorts", json={"cohorts": []}, headers={"If-Match": etag})


def _at_once(*calls: Callable[[], int]) -> list[int]:
    """Run ``calls`` together (a barrier releases them at once); their statuses in order."""
    barrier = threading.Barrier(len(calls))
    results: list[int] = [0] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_key_result_deleted_while_a_flag_names_it__never_a_500_never_both(engineer):
    """A flag being created share-locks its key result, so a delete either waits and finds
    it served (409) or wins and the flag finds no such key result (422)."""
    objective = engineer.post(
        "/api/v1/objectives", json={"title": "O", "period": "2026-Q4", "owner": "team"}
    ).json
    for n in range(6):
        kr = engineer.post(
            f"/api/v1/objectives/{objective['id']}/key-results",
            json={"title": f"K{n}", "metric": "m", "baseline": 0, "target": 1},
        ).json
        flag = {
            "key": f"kr-race-{n}",
            "name": "R",
            "flow_item": "feature",
            "key_result_id": kr["id"],
        }
        made, deleted = _at_once(
            lambda flag=flag: engineer.post("/api/v1/flags", json=flag).status_code,
            lambda kr=kr: engineer.delete(f"/api/v1/key-results/{kr['id']}").status_code,
        )
        assert made in (201, 422) and deleted in (204, 409), (made, deleted)
        assert (made, deleted) != (201, 204)


KEY_RESULT = {"title": "K", "metric": "m", "baseline": 0, "target": 1}


def test_objective_deleted_while_a_key_result_is_added__never_a_500_never_both(engineer):
    for n in range(6):
        objective = engineer.post(
            "/api/v1/objectives", json={"title": f"O{n}", "period": "2026-Q4", "owner": "team"}
        ).json
        path = f"/api/v1/objectives/{objective['id']}"
        added, deleted = _at_once(
            lambda path=path: engineer.post(f"{path}/key-results", json=KEY_RESULT).status_code,
            lambda path=path: engineer.delete(path).status_code,
        )
        assert added in (201, 404) and deleted in (204, 409), (added, deleted)
        assert (added, deleted) != (201, 204)
