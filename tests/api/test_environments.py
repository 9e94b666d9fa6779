"""Environments and SDK keys through HTTP."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import Caller
from tests.conftest import create_flag


def test_environments__after_init__three_exist_production_gated(viewer):
    response = viewer.get("/api/v1/environments")
    assert response.status_code == 200
    assert {e["key"]: e["gated"] for e in response.json} == {
        "development": False,
        "staging": False,
        "production": True,
    }


def test_create_environment__duplicate_key__409_names_key(admin):
    assert admin.post("/api/v1/environments", json={"key": "qa", "name": "QA"}).status_code == 201
    response = admin.post("/api/v1/environments", json={"key": "qa", "name": "QA"})
    assert response.status_code == 409
    assert "key" in response.json["errors"]["json"]


def test_sdk_key__created__shown_once_and_stored_hashed(admin, app):
    response = admin.post("/api/v1/environments/staging/sdk-keys")
    assert response.status_code == 201
    secret = response.json["sdk_key"]
    from sqlalchemy import select

    from flagsvc.storage.models import SdkKey

    with app.extensions["flagsvc"].db.read() as session:
        stored = session.scalars(select(SdkKey.key_hash)).all()
    assert secret not in stored
    assert all(len(h) == 64 for h in stored)


# --- every flag has a state in every environment, even when both are created at once ---

FLAGS_PER_THREAD = 5
FLAG_THREADS = 6


def _create_flags(client, secret: str, kr: int, prefix: str, barrier, failures: list) -> None:
    caller = Caller(client.application.test_client(), secret)
    barrier.wait()
    for n in range(FLAGS_PER_THREAD):
        body = {"key": f"{prefix}-{n}", "name": "F", "flow_item": "feature", "key_result_id": kr}
        response = caller.post("/api/v1/flags", json=body)
        if response.status_code != 201:
            failures.append(response.json)


def _create_environment(client, secret: str, key: str, barrier, failures: list) -> None:
    caller = Caller(client.application.test_client(), secret)
    barrier.wait()
    response = caller.post("/api/v1/environments", json={"key": key, "name": key})
    if response.status_code != 201:
        failures.append(response.json)


@pytest.mark.parametrize("round_", range(3))
def test_create_environment__while_flags_are_created__every_flag_has_a_state_there(
    client, secrets, admin, engineer, round_
):
    kr = create_flag(engineer, "seed")["key_result_id"]
    barrier, failures = threading.Barrier(FLAG_THREADS + 1), []
    threads = [
        threading.Thread(
            target=_create_flags,
            args=(client, secrets["engineer"], kr, f"t{i}", barrier, failures),
        )
        for i in range(FLAG_THREADS)
    ]
    threads.append(
        threading.Thread(
            target=_create_environment, args=(client, secrets["admin"], "qa", barrier, failures)
        )
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    keys = [f"t{i}-{n}" for i in range(FLAG_THREADS) for n in range(FLAGS_PER_THREAD)]
    missing = [
        (key, env)
        for key in ["seed", *keys]
        for env in ("production", "qa")
        if admin.get(f"/api/v1/flags/{key}/environments/{env}").status_code != 200
    ]
    assert missing == []
