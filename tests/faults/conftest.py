"""Fixtures for fault tests: private PostgreSQL and Redis servers, a fresh database each.

The servers are private because the tests stop them (see ``servers.py``). Without
the binaries the tests skip with the reason, or fail under
``FLAGSVC_REQUIRE_SERVICES=1`` (CI), like every other integration test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import service_missing

from .servers import PostgresServer
from .servers import RedisServer
from .servers import ServerUnavailableError


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on port 5433 (plus the xdist worker's number) for
    the whole session."""
    try:
        server = PostgresServer.create()
    except ServerUnavailableError as error:
        service_missing("throwaway PostgreSQL", str(error))
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    """A throwaway Redis on port 6390 (plus the xdist worker's number) for the session."""
    try:
        server = RedisServer().start()
    except ServerUnavailableError as error:
        service_missing("throwaway Redis", str(error))
    yield server
    server.destroy()


@pytest.fixture
def private_postgres(postgres_session: PostgresServer) -> Iterator[PostgresServer]:
    """The PostgreSQL server, running (a test that stops it need not restart it)."""
    if not postgres_session.running:
        postgres_session.start()
    yield postgres_session
    if not postgres_session.running:
        postgres_session.start()


@pytest.fixture
def private_redis(redis_session: RedisServer) -> Iterator[RedisServer]:
    """The Redis server, running (a test that stops it need not restart it)."""
    if not redis_session.running:
        redis_session.start()
    yield redis_session
    if not redis_session.running:
        redis_session.start()


@pytest.fixture
def fresh_database(private_postgres: PostgresServer) -> str:
    """A new, empty database on the private server (``flagsvc init`` migrates it)."""
    return private_postgres.create_database(f"faults_{uuid.uuid4().hex[:12]}")
