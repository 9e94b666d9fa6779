"""Patches instead of full snapshots: the SDK asks ``?since=``, applies what it gets, and
fetches the whole snapshot on any gap or contradiction (offline, on the fake service).

The byte counts over real HTTP are in ``tests/api/test_deltas_live.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flagsvc_sdk import Client

from .conftest import FakeService
from .conftest import cohort_doc
from .conftest import flag_doc
from .conftest import snapshot_doc
from .conftest import wait_for

MakeClient = Callable[..., Client]
Doc = dict[str, Any]


def beta_doc(version: int, members: list[str]) -> Doc:
    flag = flag_doc("checkout", stage="early_access", cohorts=["beta"])
    return snapshot_doc([flag], [cohort_doc("beta", members=members)], version=version)


def patch_doc(start: int, end: int, **step: Any) -> Doc:
    fields: Doc = {
        "flags_upserted": {},
        "flags_removed": [],
        "cohorts_upserted": {},
        "cohorts_removed": [],
        "members_added": {},
        "members_removed": {},
    }
    return {
        "spec_version": 2,
        "environment": "production",
        "from_version": start,
        "version": end,
        "patches": [{"from_version": start, "to_version": end, **fields, **step}],
    }


def polling(service: FakeService, make_client: MakeClient, **options: Any) -> Client:
    service.doc = beta_doc(1, ["u1"])
    client = make_client(stream=False, poll_interval=0.05, **options)
    assert client.wait_until_ready(5)
    return client


def snapshot_requests(service: FakeService) -> list[dict[str, str]]:
    return [dict(r.url.params) for r in service.requests if r.url.path == "/sdk/v1/snapshot"]


def test_patch__member_added__applied_without_a_full_download(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    # Given a client holding version 1 (u1 in beta), its cache file on disk
    cache = tmp_path / "cache.json"
    client = polling(service, make_client, cache_path=cache)
    assert not client.is_enabled("checkout", {"key": "u2"})
    # When the service moves to 2 (u2 joins) and answers the next poll with a patch
    service.patch = patch_doc(1, 2, members_added={"beta": ["u2"]})
    service.doc = beta_doc(2, ["u1", "u2"])
    # Then the client applies it: u2 is in, the version moved, no full snapshot fetched
    wait_for(lambda: client.stats.patches_applied == 1)
    assert client.is_enabled("checkout", {"key": "u2"})
    assert client.version == 2
    assert {"since": "1", "base": "hash-1"} in snapshot_requests(service)
    wait_for(lambda: json.loads(cache.read_text())["version"] == 2)
    assert json.loads(cache.read_text())["cohorts"]["beta"]["members"] == ["u1", "u2"]


def test_patch__every_request__announces_the_capability(
    service: FakeService, make_client: MakeClient
) -> None:
    polling(service, make_client)
    assert all(r.headers.get("Flagsvc-Delta") == "1" for r in service.requests)


def test_patch__gap_in_versions__full_snapshot_fetched(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given a client holding version 1
    client = polling(service, make_client)
    # When the service answers a patch that starts at 2 (a version the client never had)
    service.patch = patch_doc(2, 3, members_added={"beta": ["u3"]})
    service.doc = beta_doc(3, ["u1", "u2", "u3"])
    # Then the patch is refused and the whole snapshot fetched: u2, which the patch
    # could not carry, is in too
    wait_for(lambda: client.version == 3)
    assert client.stats.patches_refused == 1 and client.stats.patches_applied == 0
    assert client.is_enabled("checkout", {"key": "u2"})
    assert snapshot_requests(service)[-1] == {}  # the full fetch asks no patch


def test_patch__contradicts_the_snapshot_held__full_snapshot_fetched(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given a client holding version 1, where u1 is a member
    client = polling(service, make_client)
    # When a patch says u1 joins (the client's content diverged from the service's)
    service.patch = patch_doc(1, 2, members_added={"beta": ["u1"]})
    service.doc = beta_doc(2, ["u1", "u5"])
    # Then it is refused and the full snapshot installed
    wait_for(lambda: client.version == 2)
    assert client.stats.patches_refused == 1
    assert client.is_enabled("checkout", {"key": "u5"})


def test_patch__no_content_hash_from_the_service__never_asks_for_one(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given a service that sends no Flagsvc-Content-Hash (older than patches)
    service.doc = beta_doc(1, ["u1"])
    original = service._snapshot

    def without_hash(request: Any) -> Any:
        response = original(request)
        del response.headers["Flagsvc-Content-Hash"]
        return response

    service._snapshot = without_hash  # type: ignore[method-assign]
    client = make_client(stream=False, poll_interval=0.05)
    assert client.wait_until_ready(5)
    # When it changes
    service.doc = beta_doc(2, ["u1", "u2"])
    wait_for(lambda: client.version == 2)
    # Then every request was a plain full fetch
    assert all(params == {} for params in snapshot_requests(service))


def test_patch__held_snapshot_from_a_file__never_patched(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    # Given a bootstrap file at version 1 and a service that would answer a patch
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(json.dumps(beta_doc(1, ["u1"])))
    service.doc = beta_doc(2, ["u1", "u2"])
    service.patch = patch_doc(1, 2, members_added={"beta": ["u2"]})
    # When the client starts from the file
    client = make_client(stream=False, bootstrap_path=bootstrap)
    assert client.wait_until_ready(5)
    # Then its first fetch asked for the whole snapshot (the service may hold other
    # content at version 1 than a file written by hand)
    assert snapshot_requests(service)[0] == {}
    assert client.version == 2 and client.stats.patches_applied == 0
