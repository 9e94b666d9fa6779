"""Stream slots against a real service (gunicorn, gevent): each SDK key and each client
address gets a share. Before, one key from one address could take every slot (another
environment's key then got 503).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from tests.live import LiveService
from tests.live import start_service


@pytest.fixture
def service(tmp_path) -> Iterator[LiveService]:
    """Two streams per SDK key, three per address; the default 15 s keep-alive."""
    env = {"FLAGSVC_MAX_STREAMS_PER_KEY": "2", "FLAGSVC_MAX_STREAMS_PER_ADDRESS": "3"}
    with start_service(f"sqlite:///{tmp_path / 'fair.db'}", env=env) as live:
        yield live


@contextlib.contextmanager
def _stream(client: httpx.Client, service: LiveService, key: str) -> Iterator[httpx.Response]:
    """A stream whose hello was read (so it holds its slot), or the refusal."""
    headers = {"Authorization": f"Bearer {key}"}
    with client.stream("GET", f"{service.url}/sdk/v1/stream", headers=headers) as response:
        if response.status_code == 200:
            lines = response.iter_lines()
            while "hello" not in next(lines):
                pass
        else:
            response.read()
        yield response


def _refused(response: httpx.Response, status: int, whose: str) -> bool:
    assert response.status_code == status, response.status_code
    assert int(response.headers["retry-after"]) > 0
    return whose in response.json()["message"]


def test_stream__key_over_its_share__429_while_other_keys_get_in(service):
    production, development, staging = (
        service.sdk_key(env) for env in ("production", "development", "staging")
    )
    with httpx.Client(timeout=httpx.Timeout(10, read=20)) as client, contextlib.ExitStack() as held:
        # Given production's key holding its two streams
        for _ in range(2):
            assert held.enter_context(_stream(client, service, production)).status_code == 200
        # When it asks for a third: refused, naming the key's share
        with _stream(client, service, production) as third:
            assert _refused(third, 429, "SDK key")
        # Then another environment's key still gets in (the address's third)
        held.enter_context(_stream(client, service, development))
        # And a fourth stream from this address is refused, naming the address
        with _stream(client, service, staging) as fourth:
            assert _refused(fourth, 429, "client address")
