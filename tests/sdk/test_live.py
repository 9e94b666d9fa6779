"""The SDK against a real flagsvc process over HTTP: no mocks, real faults.

Each fault ends the same way: no exception ever reached the caller, and once the service
is back the client holds the newest state within seconds. The service runs on a SQLite
file in the ``staging`` environment (not gated, so flags move freely).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flagsvc_sdk import Client

from tests.live_helpers import Caller
from tests.live_helpers import create_cohort
from tests.live_helpers import create_flag
from tests.live_helpers import set_cohorts
from tests.live_helpers import wait_for

from .conftest import LIVE_FLAG as FLAG
from .conftest import LIVE_STATE as STATE
from .conftest import LIVE_USER as USER
from .conftest import Live

CATCH_UP = 10.0  # seconds: "within seconds" once the service is back


def test_live__change__reaches_streaming_client_fast(running: Live) -> None:
    with running.client(poll_interval=60) as client:
        assert client.wait_until_ready(5) and client.is_enabled(FLAG, USER) is True
        wait_for(lambda: client.stats.stream_connects >= 1)
        started = time.monotonic()
        version = running.set_killed(True)
        wait_for(lambda: client.version == version, timeout=CATCH_UP)
        assert time.monotonic() - started < 2.0  # the stream, not the 60 s poll
        assert client.is_enabled(FLAG, USER) is False


def test_live__service_down_at_start__bootstrap_then_catches_up(
    running: Live, tmp_path: Path
) -> None:
    # Given a bootstrap file saying "on", then the flag killed and the service down
    status, body = running.service.get("/sdk/v1/snapshot", running.sdk_key)
    assert status == 200
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_bytes(body)
    version = running.set_killed(True)
    running.service.kill()
    # When the app starts
    with running.client(bootstrap_path=bootstrap) as client:
        caller = Caller(client, FLAG, USER)
        assert client.wait_until_ready(5) is True
        assert client.is_enabled(FLAG, USER) is True  # the bootstrap answers
        # Then, once the service is back, the newest state arrives within seconds
        running.restart()
        wait_for(lambda: client.version == version, timeout=CATCH_UP)
        assert client.is_enabled(FLAG, USER) is False
        caller.stop()


def test_live__no_bootstrap_service_down__defaults_then_catches_up(running: Live) -> None:
    running.service.kill()
    with running.client() as client:
        caller = Caller(client, FLAG, USER)
        assert client.wait_until_ready(1) is False
        assert client.is_enabled(FLAG, USER, default=False) is False
        running.restart()
        wait_for(lambda: client.is_enabled(FLAG, USER) is True, timeout=CATCH_UP)
        caller.stop()


def test_live__killed_mid_stream_and_restarted__catches_up(running: Live) -> None:
    with running.client() as client:
        caller = Caller(client, FLAG, USER)
        client.wait_until_ready(5)
        wait_for(lambda: client.stats.stream_connects >= 1)
        # When the service crashes mid-stream
        running.service.kill()
        wait_for(lambda: client.stats.stream_failures >= 1)
        assert client.is_enabled(FLAG, USER) is True  # the last snapshot keeps answering
        # And comes back, where the flag then changes
        running.restart()
        version = running.set_killed(True)
        # Then
        wait_for(lambda: client.version == version, timeout=CATCH_UP)
        assert client.is_enabled(FLAG, USER) is False
        caller.stop()


def test_live__flapping_service__ends_on_newest_state(running: Live) -> None:
    with running.client() as client:
        caller = Caller(client, FLAG, USER)
        client.wait_until_ready(5)
        killed = False
        for _ in range(3):
            running.service.kill()
            time.sleep(0.3)
            running.restart()
            killed = not killed
            running.set_killed(killed)
            time.sleep(0.2)
        version = running.snapshot_version()
        wait_for(lambda: client.version == version, timeout=CATCH_UP)
        assert client.is_enabled(FLAG, USER) is (not killed)
        caller.stop()


def test_live__corrupt_cache_at_start__rejected_and_rewritten(
    running: Live, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.json"
    cache.write_bytes(b'{"spec_version": 1, "environment": "staging", "version": 9, "fla')
    with running.client(cache_path=cache) as client:
        assert client.wait_until_ready(5) and client.is_enabled(FLAG, USER) is True
        assert client.stats.snapshots_rejected == 1
    assert json.loads(cache.read_bytes())["version"] == running.snapshot_version()


def test_live__corrupt_cache_and_service_down__defaults_then_catches_up(
    running: Live, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.json"
    cache.write_bytes(b"\x00\x01 not a snapshot")
    running.service.kill()
    with running.client(cache_path=cache) as client:
        caller = Caller(client, FLAG, USER)
        assert client.is_enabled(FLAG, USER, default=True) is True  # the caller's default
        running.restart()
        wait_for(lambda: client.version == running.snapshot_version(), timeout=CATCH_UP)
        assert client.is_enabled(FLAG, USER, default=False) is True
        caller.stop()


def test_live__metrics__accepted_by_the_service(running: Live) -> None:
    with running.client(metrics_interval=3600) as client:
        client.wait_until_ready(5)
        for _ in range(5):
            client.is_enabled(FLAG, USER)
    assert client.stats.metrics_sent == 1 and client.stats.metrics_dropped == 0


@pytest.fixture
def opt_in_flag(running: Live) -> Iterator[Live]:
    """The flag in early access on the opt-in cohort ``sdk-beta``; back to 100 % after."""
    admin = running.admin
    create_cohort(admin, "sdk-beta", opt_in=True)
    set_cohorts(admin, FLAG, "staging", ["sdk-beta"])
    assert admin.post(f"{STATE}/stage", json={"stage": "early_access"}).status_code == 200
    yield running
    moved = admin.post(f"{STATE}/stage", json={"stage": "general", "rollout_percent": 100})
    assert moved.status_code == 200, moved.text


def test_live__enroll_and_leave__opt_in_cohort_membership_follows(opt_in_flag: Live) -> None:
    with opt_in_flag.client() as client:
        client.wait_until_ready(5)
        someone = {"key": "opt-in-user"}
        assert client.is_enabled(FLAG, someone) is False
        # When
        assert client.enroll("sdk-beta", someone) is True
        # Then
        wait_for(lambda: client.is_enabled(FLAG, someone), timeout=CATCH_UP)
        assert client.evaluate(FLAG, someone).matched_cohort == "sdk-beta"
        assert client.leave("sdk-beta", someone) is True
        wait_for(lambda: not client.is_enabled(FLAG, someone), timeout=CATCH_UP)
        assert client.enroll("no-such-cohort", someone) is False


def test_live__integer_user_key__sdk_and_service_agree_with_its_digits(running: Live) -> None:
    # Given a 50 % ramp, so that the bucket decides (the README's {"key": user.id})
    flag = "sdk-live-int-keys"
    create_flag(running.admin, flag, rollout_percent=50)
    served = httpx.Client(
        base_url=running.service.url, headers={"Authorization": f"Bearer {running.sdk_key}"}
    )
    with running.client() as client, served:
        wait_for(lambda: flag in client.all_flags({"key": 1}), timeout=CATCH_UP)
        answers = set()
        for user_id in range(60):
            # When
            local = client.evaluate(flag, {"key": user_id})
            remote = served.post("/sdk/v1/evaluate", json={"context": {"key": user_id}})
            # Then: the integer is its digits, locally and on the service
            assert remote.status_code == 200, remote.text
            result = remote.json()["results"][flag]
            assert (local.enabled, local.reason, local.error_code) == (
                result["enabled"],
                result["reason"],
                result["error_code"],
            )
            assert local == client.evaluate(flag, {"key": str(user_id)})
            assert client.is_enabled(flag, {"key": user_id}) is local.enabled
            answers.add(local.enabled)
        assert answers == {True, False}  # both sides of the ramp were met


def _evaluate_lone_surrogate(url: str, sdk_key: str, flag: str) -> None:
    """In a child: what the SDK answers for ``json.loads('"\\udcff"')`` (exit 0: it answered)."""
    client = Client(url, sdk_key, poll_interval=60, send_metrics=False)
    assert client.wait_until_ready(10)
    user_key = json.loads('"user-\\udcff"')
    assert client.is_enabled(flag, {"key": user_key}, default=True) is True
    assert client.is_enabled(flag, {"key": user_key}, default=False) is False
    assert client.evaluate(flag, {"key": user_key}).error_code == "INVALID_CONTEXT"
    client.close()


def test_live__lone_surrogate_user_key__sdk_answers_default_service_says_422(
    running: Live,
) -> None:
    # When a request field carries a lone surrogate into is_enabled (in a child process:
    # before the fix it died with SIGSEGV inside mmh3)
    spawn = multiprocessing.get_context("spawn")
    child = spawn.Process(
        target=_evaluate_lone_surrogate, args=(running.service.url, running.sdk_key, FLAG)
    )
    child.start()
    child.join(60)
    # Then it answered the caller's default and lived on
    assert child.exitcode == 0
    # And the service refuses the same context as invalid
    status = httpx.post(
        f"{running.service.url}/sdk/v1/evaluate",
        content=b'{"context": {"key": "user-\\udcff"}}',
        headers={"Authorization": f"Bearer {running.sdk_key}", "Content-Type": "application/json"},
    ).status_code
    assert status == 422


def test_live__close_against_an_unresponsive_service__bounded(running: Live) -> None:
    # Given a streaming client with counts to flush, and the service frozen (it accepts
    # connections and never answers)
    client = running.client(poll_interval=0.2, timeout=5.0, metrics_interval=3600)
    assert client.wait_until_ready(5)
    wait_for(lambda: client.stats.stream_connects >= 1)
    for _ in range(10):
        client.is_enabled(FLAG, USER)
    with running.service.frozen():
        time.sleep(0.5)  # the updater is now stuck in a poll nobody answers
        # When
        started = time.monotonic()
        client.close()
        # Then close() returns within its bound (2 s), not after the HTTP timeouts
        assert time.monotonic() - started < 2.5
        # And the updater ends by its request's own timeout, installing nothing
        for thread in client._background.updater.threads:
            thread.join(5.0 + 1.0)
            assert not thread.is_alive()
    assert client.is_enabled(FLAG, USER) is True  # the last snapshot keeps answering


def test_live__bootstrap_file_missing__warns_and_starts(
    running: Live, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "flags-bootstrap.jsno"  # a typo
    with running.client(bootstrap_path=missing, cache_path=tmp_path / "cache.json") as client:
        assert client.wait_until_ready(5)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(missing) in message and "does not exist" in message for message in warnings)
    assert not any("cache.json" in message for message in warnings)  # a cache may be new


def test_live__openfeature_provider_shut_down__no_more_events_from_its_client(
    running: Live,
) -> None:
    from flagsvc_sdk.openfeature import FlagsvcProvider
    from openfeature import api
    from openfeature.event import EventDetails
    from openfeature.event import ProviderEvent
    from openfeature.provider.no_op_provider import NoOpProvider

    events: list[EventDetails] = []
    with running.client() as client:
        assert client.wait_until_ready(5)
        provider = FlagsvcProvider(client)
        api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
        try:
            api.set_provider_and_wait(provider)
            version = running.set_killed(True)
            wait_for(lambda: len(events) == 1)
            # When the provider is shut down (replaced), and the flag changes again
            api.set_provider(NoOpProvider())
            wait_for(lambda: not client._listeners, timeout=5)
            running.set_killed(False)
            wait_for(lambda: client.version != version)
            # Then its client no longer calls it
            time.sleep(0.2)
            assert len(events) == 1
        finally:
            api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
            api.clear_providers()
