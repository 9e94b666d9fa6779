"""What a client's status says, against a real service: refused keys, outages, recovery.

The service counts failed authentications per address (``FLAGSVC_AUTH_FAILURE_LIMIT``,
3 here so that a client retrying at normal pace trips it within a second or two).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flagsvc_sdk import Client
from flagsvc_sdk import Status
from flagsvc_sdk import StatusChange

from tests.live_helpers import wait_for

from .conftest import LIVE_FLAG as FLAG
from .conftest import LIVE_USER as USER
from .conftest import Live

LIVE_ENV = {"FLAGSVC_AUTH_FAILURE_LIMIT": "3"}
WRONG_KEY = "fss_staging_0000000000000000000000000000000000000000000"


def test_live__wrong_key__fatal_at_once_one_error_and_no_hammering(
    running: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flagsvc_sdk")
    client = Client(running.service.url, WRONG_KEY, poll_interval=0.2, metrics_interval=0.2)
    try:
        # When the app waits for it, as the README says
        started = time.monotonic()
        ready = client.wait_until_ready(3)
        # Then it learns at once that the key is refused
        assert ready is False and time.monotonic() - started < 1.0
        assert client.status is Status.FATAL
        # And says so once, naming the key by its prefix, never in full
        time.sleep(2.0)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, errors
        assert "fss_staging_0000" in errors[0] and WRONG_KEY not in errors[0]
        # And retries at a pace of minutes, not of its poll interval
        assert client.stats.fetches + client.stats.stream_failures <= 2
        assert client.stats.metrics_sent + client.stats.metrics_dropped == 0
        assert client.is_enabled(FLAG, USER, default=True) is True  # the caller's default
    finally:
        client.close()


def test_live__wrong_key_next_door__a_right_key_is_not_locked_out(running: Live) -> None:
    # Given a client with a refused key on the same address, running for a while
    fresh_key = running.service.sdk_key("staging")  # never used: the service knows it not
    with Client(running.service.url, WRONG_KEY, poll_interval=0.1) as wrong:
        time.sleep(2.0)
        assert wrong.status is Status.FATAL
        # When a correctly keyed client starts next to it
        with Client(running.service.url, fresh_key, poll_interval=0.5) as right:
            # Then the service's failure limit never held it back
            assert right.wait_until_ready(3) is True
            assert right.status is Status.READY


def test_live__key_revoked_while_running__fatal_and_told(running: Live) -> None:
    # Given a ready client on its own key
    key = running.service.sdk_key("staging")
    changes: list[StatusChange] = []
    with Client(running.service.url, key, poll_interval=0.2, timeout=2.0) as client:
        client.add_status_listener(changes.append)
        assert client.wait_until_ready(5) and client.status is Status.READY
        wait_for(lambda: client.stats.stream_connects >= 1)
        # When the key is revoked
        listed = running.admin.get("/api/v1/environments/staging/sdk-keys").json()
        key_id = next(k["id"] for k in listed if key.startswith(k["prefix"]))
        assert running.admin.delete(f"/api/v1/environments/staging/sdk-keys/{key_id}").is_success
        # Then the client turns fatal, keeps answering from its snapshot, and says why
        wait_for(lambda: client.status is Status.FATAL, timeout=5)
        assert changes[-1].previous is Status.READY
        assert "refused" in (changes[-1].message or "")
        assert client.is_enabled(FLAG, USER) is True


def test_live__service_down_and_back__ready_stale_ready(running: Live) -> None:
    changes: list[StatusChange] = []
    with running.client(on_status=changes.append) as client:
        assert client.wait_until_ready(5) and client.status is Status.READY
        wait_for(lambda: client.stats.stream_connects >= 1)
        # When the service goes away
        running.service.kill()
        # Then the client says its answers are stale (and keeps giving them)
        wait_for(lambda: client.status is Status.STALE, timeout=5)
        assert client.is_enabled(FLAG, USER) is True
        # And ready once the service is back
        running.restart()
        wait_for(lambda: client.status is Status.READY, timeout=10)
    assert [c.status for c in changes][-3:] == [Status.READY, Status.STALE, Status.READY]


def test_live__no_snapshot_service_down__initializing_then_error_then_ready(
    running: Live,
) -> None:
    running.service.kill()
    with running.client() as client:
        assert client.status in (Status.INITIALIZING, Status.ERROR)
        assert client.wait_until_ready(1) is False
        wait_for(lambda: client.status is Status.ERROR)
        running.restart()
        wait_for(lambda: client.status is Status.READY, timeout=10)


def test_live__bootstrap_file_service_down__stale_until_first_fresh_snapshot(
    running: Live, tmp_path: Path
) -> None:
    bootstrap = _bootstrap_file(running, tmp_path)
    running.service.kill()
    with running.client(bootstrap_path=bootstrap) as client:
        assert client.status is Status.STALE  # answers, but from a file
        assert client.wait_until_ready(5) is True
        assert client.status is Status.STALE
        running.restart()
        wait_for(lambda: client.status is Status.READY, timeout=10)


# --- the OpenFeature provider follows the status ----------------------------------------


@pytest.fixture
def openfeature_api() -> Iterator[Any]:
    from openfeature import api

    yield api
    api.clear_providers()


def _provider_status(api: Any) -> Any:
    return api.get_client().get_provider_status()


def test_live__provider__ready_stale_through_an_outage_then_ready(
    running: Live, openfeature_api: Any
) -> None:
    from flagsvc_sdk.openfeature import FlagsvcProvider
    from openfeature.provider import ProviderStatus

    with running.client() as client:
        openfeature_api.set_provider(FlagsvcProvider(client))
        wait_for(lambda: _provider_status(openfeature_api) is ProviderStatus.READY)
        wait_for(lambda: client.stats.stream_connects >= 1)
        running.service.kill()
        wait_for(lambda: _provider_status(openfeature_api) is ProviderStatus.STALE, timeout=5)
        of_client = openfeature_api.get_client()
        assert of_client.get_boolean_value(FLAG, False, _of_context()) is True  # still answers
        running.restart()
        wait_for(lambda: _provider_status(openfeature_api) is ProviderStatus.READY, timeout=10)


def test_live__provider__bootstrap_only__stale_after_initialize(
    running: Live, openfeature_api: Any, tmp_path: Path
) -> None:
    from flagsvc_sdk.openfeature import FlagsvcProvider
    from openfeature.provider import ProviderStatus

    bootstrap = _bootstrap_file(running, tmp_path)
    running.service.kill()
    with running.client(bootstrap_path=bootstrap) as client:
        openfeature_api.set_provider_and_wait(FlagsvcProvider(client, ready_timeout=2))
        wait_for(lambda: _provider_status(openfeature_api) is ProviderStatus.STALE)
        running.restart()
        wait_for(lambda: _provider_status(openfeature_api) is ProviderStatus.READY, timeout=10)


def test_live__provider__service_down_no_file__quick_start_does_not_raise(
    running: Live, openfeature_api: Any
) -> None:
    from flagsvc_sdk.openfeature import FlagsvcProvider
    from openfeature.exception import ProviderNotReadyError
    from openfeature.provider import ProviderStatus

    running.service.kill()
    with running.client() as client:
        # set_provider_and_wait raises while nothing can answer (documented) ...
        with pytest.raises(ProviderNotReadyError):
            openfeature_api.set_provider_and_wait(FlagsvcProvider(client, ready_timeout=0.5))
        openfeature_api.clear_providers()
        # ... the quick start's set_provider does not, and turns READY when it can
        openfeature_api.set_provider(FlagsvcProvider(client, ready_timeout=0.5))
        wait_for(lambda: _provider_status(openfeature_api) is ProviderStatus.ERROR)
        default = openfeature_api.get_client().get_boolean_value(FLAG, False, _of_context())
        assert default is False
        running.restart()
        wait_for(lambda: _provider_status(openfeature_api) is ProviderStatus.READY, timeout=10)


def test_live__provider__refused_key__fatal(running: Live, openfeature_api: Any) -> None:
    from flagsvc_sdk.openfeature import FlagsvcProvider
    from openfeature.exception import ProviderFatalError
    from openfeature.provider import ProviderStatus

    with Client(running.service.url, WRONG_KEY) as client:
        with pytest.raises(ProviderFatalError):
            openfeature_api.set_provider_and_wait(FlagsvcProvider(client))
        assert _provider_status(openfeature_api) is ProviderStatus.FATAL


def _of_context() -> Any:
    from openfeature.evaluation_context import EvaluationContext

    return EvaluationContext(USER["key"], {"country": USER["country"]})


def _bootstrap_file(running: Live, folder: Path) -> Path:
    """A bootstrap file made as the README says: ``flagsvc export-snapshot``."""
    bootstrap = folder / "bootstrap.json"
    running.service.cli("export-snapshot", "--environment", "staging", "--output", str(bootstrap))
    status, body = running.service.get("/sdk/v1/snapshot", running.sdk_key)
    served, exported = json.loads(body), json.loads(bootstrap.read_bytes())
    assert status == 200 and exported["flags"] == served["flags"]  # what the service serves
    return bootstrap
