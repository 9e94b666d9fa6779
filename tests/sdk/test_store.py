"""Bootstrap and last-known-good files: start and answer while the service is down."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flagsvc_sdk import Client
from flagsvc_sdk import FetchError
from flagsvc_sdk._store import parse_snapshot
from flagsvc_sdk._store import write_atomic

from .conftest import FakeService
from .conftest import eu_rollout_doc
from .conftest import wait_for

MakeClient = Callable[..., Client]
NL = {"key": "user-1", "country": "NL"}


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_bootstrap__service_down_at_start__answers_from_the_file(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    # Given
    service.down = True
    bootstrap = _write(tmp_path / "bootstrap.json", eu_rollout_doc(version=3))
    # When
    client = make_client(bootstrap_path=bootstrap)
    # Then: ready at once from the file, without waiting for the service
    assert client.wait_until_ready(5) is True
    assert client.version == 3
    assert client.is_enabled("new-checkout", NL) is True
    assert client.evaluate("new-checkout", NL).version == 3


def test_bootstrap__before_the_service_answers__reason_cached_then_the_real_one(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    # Given a client started from a bootstrap file while the service is down
    service.down = True
    client = make_client(bootstrap_path=_write(tmp_path / "b.json", eu_rollout_doc(version=3)))
    client.wait_until_ready(5)
    # Then its answers say they come from the file
    details = client.get_boolean_details("new-checkout", NL, False)
    assert (details.value, details.reason, details.variation) == (True, "CACHED", "on")
    # When the service answers, Then the reasons are the engine's again
    service.doc = eu_rollout_doc(version=4)
    service.down = False
    wait_for(lambda: client.version == 4)
    assert client.get_boolean_details("new-checkout", NL, False).reason == "TARGETING_MATCH"


def test_bootstrap__service_back__catches_up(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    service.down = True
    client = make_client(bootstrap_path=_write(tmp_path / "b.json", eu_rollout_doc(version=3)))
    client.wait_until_ready(5)
    service.doc = eu_rollout_doc(version=9, killed=True)
    service.down = False
    wait_for(lambda: client.version == 9)
    assert client.is_enabled("new-checkout", NL) is False


def test_cache__download__written_atomically_and_read_at_next_start(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    # Given a first client that downloaded version 5
    cache = tmp_path / "flags-cache.json"
    service.doc = eu_rollout_doc(version=5)
    first = make_client(cache_path=cache)
    wait_for(lambda: cache.exists())
    first.close()
    assert json.loads(cache.read_text()) == service.doc
    assert [p.name for p in tmp_path.iterdir()] == ["flags-cache.json"]  # no temp files left
    # When a second client starts while the service is down
    service.down = True
    second = make_client(cache_path=cache)
    # Then it answers from the cache
    assert second.wait_until_ready(5) and second.version == 5
    assert second.is_enabled("new-checkout", NL) is True


def test_cache__newer_than_bootstrap__cache_wins(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    service.down = True
    client = make_client(
        bootstrap_path=_write(tmp_path / "b.json", eu_rollout_doc(version=2)),
        cache_path=_write(tmp_path / "c.json", eu_rollout_doc(version=7)),
    )
    assert client.version == 7


def test_bootstrap__newer_than_cache__bootstrap_wins(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    service.down = True
    client = make_client(
        bootstrap_path=_write(tmp_path / "b.json", eu_rollout_doc(version=8)),
        cache_path=_write(tmp_path / "c.json", eu_rollout_doc(version=7)),
    )
    assert client.version == 8


CORRUPT = [
    b"",
    b"{",
    b'{"spec_version": 1, "environment": "production", "version": 4, "flags": {"new-c',
    b"not json at all",
    b"[]",
    b"null",
    b'{"spec_version": 3, "environment": "p", "version": 1, "flags": {}, "cohorts": {}}',
    b'{"spec_version": 1, "environment": "p", "version": 1, "flags": {"x": {}}, "cohorts": {}}',
    b"\xff\xfe\x00garbage",
    b"[" * 100_000,
]


@pytest.mark.parametrize("raw", CORRUPT, ids=lambda raw: repr(raw[:30]))
def test_parse_snapshot__corrupt_or_truncated__fetch_error(raw: bytes) -> None:
    with pytest.raises(FetchError, match=r"rejected snapshot|not a JSON object"):
        parse_snapshot(raw, "test")


@pytest.mark.parametrize("raw", CORRUPT, ids=lambda raw: repr(raw[:30]))
def test_cache__corrupt_file_at_start__ignored_counted_and_bootstrap_used(
    service: FakeService, make_client: MakeClient, tmp_path: Path, raw: bytes
) -> None:
    # Given a corrupt cache, a good bootstrap and no service
    service.down = True
    cache = tmp_path / "c.json"
    cache.write_bytes(raw)
    # When
    client = make_client(
        cache_path=cache, bootstrap_path=_write(tmp_path / "b.json", eu_rollout_doc(version=2))
    )
    # Then
    assert client.wait_until_ready(5) and client.version == 2
    assert client.stats.snapshots_rejected == 1


def test_cache__corrupt_file_and_service_up__service_snapshot_replaces_it(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    cache = tmp_path / "c.json"
    cache.write_bytes(CORRUPT[2])
    client = make_client(cache_path=cache)
    assert client.wait_until_ready(5) and client.version == 1
    wait_for(lambda: cache.read_bytes() != CORRUPT[2])
    assert json.loads(cache.read_bytes()) == service.doc


def test_bootstrap__missing_file__defaults_until_service(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    service.down = True
    client = make_client(bootstrap_path=tmp_path / "nope.json", cache_path=tmp_path / "nope2.json")
    assert client.wait_until_ready(0.1) is False
    assert client.stats.snapshots_rejected == 0
    service.down = False
    wait_for(lambda: client.version == 1)


def test_download__corrupt_snapshot__last_good_kept_and_counted(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    # Given a client holding version 1 (also in its cache)
    cache = tmp_path / "c.json"
    client = make_client(stream=False, cache_path=cache)
    client.wait_until_ready(5)
    wait_for(lambda: cache.exists())
    # When the service starts serving a truncated snapshot
    service.snapshot_body = CORRUPT[2]
    wait_for(lambda: client.stats.snapshots_rejected >= 2)
    # Then the last good snapshot still answers, and the cache was not overwritten
    assert client.version == 1 and client.is_enabled("new-checkout", NL)
    assert json.loads(cache.read_bytes())["version"] == 1
    # And once the service is healthy again, the next good snapshot is taken
    service.snapshot_body = None
    service.doc = eu_rollout_doc(version=2, killed=True)
    wait_for(lambda: client.version == 2)


def test_cache__unwritable_folder__logged_client_goes_on(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(cache_path=tmp_path / "missing-dir" / "c.json")
    assert client.wait_until_ready(5) and client.is_enabled("new-checkout", NL)


def test_write_atomic__replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    write_atomic(path, b"old")
    write_atomic(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["f.json"]


def test_write_atomic__failure__no_temp_file_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "f.json", b"data")
    assert os.listdir(tmp_path) == []
