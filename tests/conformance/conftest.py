"""A live flagsvc (gunicorn on PostgreSQL and Redis) with the flags OpenFeature's scenarios
name, and the providers in the states the scenarios ask for.

Every provider is the real ``FlagsvcProvider`` on a real ``flagsvc_sdk.Client``; the
states come from real situations: ``stable`` talks to the live service, ``not ready``
waits for a service that does not answer, ``error`` gave up waiting for it, ``fatal``
holds an SDK key the service refuses, ``stale`` answers from a bootstrap file while the
service is unreachable. Scenarios that cannot apply to a server-side provider are
skipped here with their reason, the same list as ``docs/openfeature-conformance.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import pytest
import redis
from flagsvc_sdk import Client
from flagsvc_sdk.openfeature import FlagsvcProvider
from openfeature import api
from openfeature.provider import ProviderStatus
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

from tests.conftest import PG_URL
from tests.conftest import service_missing
from tests.conftest import worker_index
from tests.live import LiveService
from tests.live import free_port
from tests.live import start_service
from tests.live_helpers import admin_client
from tests.live_helpers import wait_for

from .flags import ENVIRONMENT
from .flags import create_all

FEATURES = Path(__file__).parent / "features"
NOT_APPLICABLE = {
    ("Resolves zero value", "boolean-zero-flag"): (
        "a boolean flagsvc flag is a release toggle: released, it answers true; one that "
        "answers false to everyone is off (reason DISABLED), not STATIC"
    ),
    ("Resolves zero value with targeting", "boolean-targeted-zero-flag"): (
        "a boolean flagsvc flag answers true to the cohorts it is released to; a cohort "
        "never gets false through targeting (exclusions and stage off do that)"
    ),
    ("CACHED reason", None): (
        "the provider evaluates locally on a snapshot: a second evaluation is computed "
        "again, not served from a cache of answers (CACHED marks answers from a bootstrap "
        "or cache file before the service's first snapshot)"
    ),
    ("Flag metadata in evaluation details", None): (
        "flagsvc's flag metadata is what the service knows (stage, key result, flow item, "
        "matched cohort, version), not free-form key-values set on a flag"
    ),
    ("Returns metadata", None): "as 'Flag metadata in evaluation details'",
    ("Returns no metadata", None): (
        "every flagsvc answer carries the flag's metadata (stage, key result, flow item, "
        "version), which OpenFeature allows (1.4.14); it is never empty"
    ),
}
"""(scenario name, the example's flag key or None for all) -> why it cannot apply."""


@dataclass
class Providers:
    """The providers the scenarios ask for, each registered on its own domain."""

    service: LiveService
    clients: list[Client]

    def domain(self, state: str) -> str:
        return f"conformance-{state.replace(' ', '-')}"


@pytest.fixture(scope="session")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Providers]:
    """A live service on PostgreSQL and Redis with the scenarios' flags; one provider per
    state, registered once for the session."""
    database, redis_url = _services()
    service = start_service(database, redis_url)
    clients: list[Client] = []
    try:
        with admin_client(service) as admin:
            create_all(admin)
        sdk_key = service.sdk_key(ENVIRONMENT)
        status, snapshot = service.get("/sdk/v1/snapshot", sdk_key)
        assert status == 200
        bootstrap = tmp_path_factory.mktemp("conformance") / "bootstrap.json"
        bootstrap.write_bytes(snapshot)
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        states = {
            "stable": (Client(service.url, sdk_key), 10.0),
            "not ready": (Client(dead, sdk_key, send_metrics=False), 3600.0),
            "error": (Client(dead, sdk_key, send_metrics=False), 0.05),
            "fatal": (Client(service.url, "fss_staging_refused", send_metrics=False), 10.0),
            "stale": (Client(dead, sdk_key, bootstrap_path=bootstrap, send_metrics=False), 1.0),
        }
        found = Providers(service, [client for client, _ in states.values()])
        clients = found.clients
        for state, (client, timeout) in states.items():
            api.set_provider(FlagsvcProvider(client, ready_timeout=timeout), found.domain(state))
        wait_for(lambda: _status(found, "stable") is ProviderStatus.READY, timeout=15)
        yield found
    finally:
        api.clear_providers()
        for client in clients:
            client.close(timeout=0.5)
        service.stop()


def _status(found: Providers, state: str) -> ProviderStatus:
    return api.get_client(found.domain(state)).get_provider_status()


def _services() -> tuple[str, str]:
    """A database and a Redis database of this suite's own (per xdist worker): the live
    service migrates and seeds them, and nothing else of the session uses them."""
    base = os.environ.get("TEST_REDIS_URL", "")
    if not PG_URL or not base:
        service_missing("PostgreSQL and Redis", "TEST_DATABASE_URL / TEST_REDIS_URL not set")
    url = make_url(PG_URL)
    name = f"{url.database}_openfeature_{worker_index()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    parts = urlsplit(base)
    redis_url = urlunsplit(parts._replace(path=f"/{15 - worker_index()}"))
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    database = url.set(database=name, drivername="postgresql")
    return database.render_as_string(hide_password=False), redis_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip, with the reason, the scenarios that cannot apply to a server-side provider."""
    by_test = {f"test_{name.lower().replace(' ', '_')}": (name, key)
               for name, key in NOT_APPLICABLE}  # fmt: skip
    for item in items:
        found = by_test.get(getattr(item, "originalname", ""))
        if found is None:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        example = params.get("_pytest_bdd_example") or {}
        name, key = found
        if key is None or example.get("key") == key:
            reason = NOT_APPLICABLE[(name, key)]
            item.add_marker(pytest.mark.skip(reason=f"not applicable: {reason}"))


def pytest_configure(config: pytest.Config) -> None:
    """Register the suites' tags (``@spec-1.4.7``, ``@booleans``…): pytest-bdd turns them
    into markers, which strict markers would otherwise refuse."""
    for path in FEATURES.glob("*.feature"):
        for tag in sorted(set(re.findall(r"@([\w.\-]+)", path.read_text(encoding="utf-8")))):
            config.addinivalue_line("markers", f"{tag}: a tag of OpenFeature's Gherkin suites")
