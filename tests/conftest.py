"""Shared fixtures: the app on SQLite and (when configured) PostgreSQL, clients per role.

Every test that uses ``app`` runs once per backend. PostgreSQL comes from
``TEST_DATABASE_URL``; without it those runs are skipped with a reason, unless
``FLAGSVC_REQUIRE_SERVICES=1`` (set by CI), which turns a missing service into a failure.

Under pytest-xdist (``make test`` runs ``-n auto``: two workers per core) each worker
gets its own PostgreSQL database (``<name>_gw0``, created on first use) and its own Redis
database number (the configured one plus the worker's index), so workers never empty
each other's data or hear each other's change messages (pub/sub channels carry the
database number).
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import closing
from copy import deepcopy
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import TypeVar
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import hypothesis.core as hypothesis_core
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis.vendor.pretty import RepresentationPrinter
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError
from werkzeug.middleware.proxy_fix import ProxyFix

from flagsvc import create_app
from flagsvc import create_state
from flagsvc.api.sdk_fast import SnapshotFastPath
from flagsvc.config import Config
from flagsvc.domain.roles import Role
from flagsvc.observability import metrics
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.state import AppState
from flagsvc.storage import migrate
from flagsvc.storage.db import Engines
from flagsvc.storage.db import open_engines
from flagsvc.storage.models import Base

REQUIRE_SERVICES = os.environ.get("FLAGSVC_REQUIRE_SERVICES") == "1"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
"""``gw0``, ``gw1``, … under pytest-xdist; empty in a plain run."""
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
if PG_URL.startswith("postgresql://"):
    PG_URL = "postgresql+psycopg://" + PG_URL.removeprefix("postgresql://")


REDIS_DATABASES = 16
"""Redis's default number of databases: each xdist worker takes one (``_worker_redis``)."""


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: absent under -p no:xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core, at most one per Redis database.

    A third of a test process's time is spent waiting (for a service process to start
    or stop, a browser to draw, a stream's next event, a retry's back-off) while its
    core sits idle; with two workers per core another test uses that time. Measured on
    2 cores: bench/README.md ("The suite's time").
    """
    return max(1, min(2 * (os.cpu_count() or 1), REDIS_DATABASES))


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported and built (flagsvc, SQLAlchemy, Hypothesis, every test
    module and item) lives until the run ends: moved out of the garbage collector's
    reach, as ``flagsvc.serving.worker_booted`` does for a service, so each full
    collection walks only what the tests made since (a third less time collecting).
    """
    gc.freeze()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Hypothesis prints each failing example with its own printer, not schemathesis' stub.

    schemathesis (tests/api/test_fuzz.py) swaps ``hypothesis.core.RepresentationPrinter``,
    process-wide, for a printer whose ``pretty`` prints nothing (a speed-up for its own
    runs) as soon as it is imported, and its pytest plugin imports it at start-up: every
    property test of the suite then reported ``Failing test case: test_x(doc=, contexts=,)``.
    Hypothesis only prints on a failure (or verbose), so nothing here pays for the real
    one; it is put back before each test since schemathesis may be imported later.
    """
    hypothesis_core.RepresentationPrinter = RepresentationPrinter  # type: ignore[misc]


def worker_index() -> int:
    """This xdist worker's number (0 in a plain run)."""
    return int(WORKER.removeprefix("gw")) if WORKER else 0


def worker_database(url: str) -> str:
    """``url`` with a database of this worker's own, created if it does not exist yet."""
    if not WORKER:
        return url
    base = make_url(url)
    name = f"{base.database}_{WORKER}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _worker_redis(url: str) -> str:
    """``url`` with this worker's Redis database number (the configured one + its index)."""
    if not WORKER:
        return url
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + worker_index()
    return urlunsplit(parts._replace(path=f"/{number}"))


def service_missing(what: str, reason: str) -> None:
    """Skip, or fail when CI demands the real services."""
    message = f"{what} unavailable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (FLAGSVC_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@dataclass
class MutableClock:
    """A clock tests move by hand (no sleeps)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 10, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is the slow part).

    Already in write-ahead-log mode, as the service leaves every database it opens
    (``storage.db``): the switch rewrites and syncs the file, tens of milliseconds that
    every test's first connection would otherwise spend again.
    """
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    return path


MEMORY_FOLDER = Path("/dev/shm")
"""A RAM-backed folder (tmpfs) on Linux, where a file sync costs nothing."""


@pytest.fixture(scope="session")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where every test of this process finds its SQLite database.

    One path, hence one URL, so the tests share the engines built for it (``engines``)
    as they share PostgreSQL's; ``restore_sqlite`` empties it between tests. In memory
    when the system offers a tmpfs: SQLite syncs the log at every commit and when the
    last connection closes, milliseconds each on a disk, and no test is about surviving
    a power cut.
    """
    if not (MEMORY_FOLDER.is_dir() and os.access(MEMORY_FOLDER, os.W_OK)):
        yield tmp_path_factory.mktemp("sqlite") / "flagsvc.db"
        return
    folder = Path(tempfile.mkdtemp(prefix="flagsvc-tests-", dir=MEMORY_FOLDER))
    yield folder / "flagsvc.db"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    """PostgreSQL at ``TEST_DATABASE_URL``, migrated from empty once per session.

    Its commits do not wait for the log to reach the disk (``synchronous_commit``
    off for this database only): several milliseconds per commit, and what a commit
    shows to every other connection is the same either way; only a crash of the
    server could lose the last commits, and the tests that kill PostgreSQL run their
    own servers (``tests/faults``).
    """
    if not PG_URL:
        service_missing("PostgreSQL", "TEST_DATABASE_URL is not set")
    try:
        url = worker_database(PG_URL)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        _commit_without_waiting(engine)
        engine.dispose()
    except OperationalError as error:
        service_missing("PostgreSQL", str(error).splitlines()[0])
    migrate.upgrade(url)
    return url


def _commit_without_waiting(engine: Any) -> None:
    """``synchronous_commit`` off for the database's new connections, if this role may
    (its owner may; without the right the tests only run slower)."""
    name = engine.url.database
    try:
        with engine.begin() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except ProgrammingError as error:
        if getattr(error.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty, migrated database per test, on each backend."""
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")
        restore_sqlite(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_migrated")
    _truncate(url)
    yield url


def restore_sqlite(template: Path, path: Path) -> None:
    """Make ``path`` a copy of ``template`` again, whatever the last test left there.

    The shared engines' pooled connections are closed first (they would go on reading
    the old file), its write-ahead log and shared-memory index go (they belong to the
    old file), and the copy replaces the old file by a rename: a connection some test
    left open keeps the old file to itself, and SQLite does not checkpoint into, or
    delete the log of, a database file that has been unlinked since it opened it.
    """
    for engines in _ENGINES.values():
        if engines.url == f"sqlite:///{path}":
            engines.dispose()
    for suffix in ("-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(template, copy)
    os.replace(copy, path)


_ENGINES: dict[tuple[str, int, float], Engines] = {}
"""Engines already open, by database address and pool settings."""


def engines(url: str, pool_size: int = 10, pool_timeout: float = 30.0) -> Engines:
    """The engines for ``url``, opened once per process and shared by the tests' states.

    An engine keeps the statements it compiled (SQLAlchemy compiles each distinct
    statement once per engine): with fresh engines per test, compiling took about a
    quarter of an API test's time. Each test still gets its own ``Database`` handle on
    them, hence hooks of its own (``Database``), and its pooled connections are closed
    when it ends (``app``), so nothing of a test's reaches the next but compiled SQL.
    """
    key = (url, pool_size, pool_timeout)
    if key not in _ENGINES:
        _ENGINES[key] = open_engines(url, pool_size, pool_timeout)
    return _ENGINES[key]


def shared_engines(config: Config) -> Engines:
    """The engines ``engines`` keeps for ``config``'s database and pool settings."""
    return engines(config.database_url, config.db_pool_size, config.db_pool_timeout_seconds)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only (live services, two instances): migrated and emptied."""
    url: str = request.getfixturevalue("postgres_migrated")
    _truncate(url)
    return url


@pytest.fixture
def redis_url() -> str:
    """Redis at ``TEST_REDIS_URL``, its database emptied (snapshots, counters of earlier tests)."""
    configured = os.environ.get("TEST_REDIS_URL", "")
    if not configured:
        service_missing("Redis", "TEST_REDIS_URL is not set")
    url = _worker_redis(configured)
    try:
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    except redis.RedisError as error:
        service_missing("Redis", str(error))
    return url


INSUFFICIENT_PRIVILEGE = "42501"
BULKY_ROWS = 1000
"""A table holding more rows than this is truncated; fewer are deleted."""
USED_SEQUENCES = text(
    "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
)
"""Sequences drawn from since they last (re)started, with or without a row to show for it."""


@dataclass
class _Emptier:
    """Empties one PostgreSQL database between tests, as ``TRUNCATE … RESTART IDENTITY``
    of every table would, in a few milliseconds instead of a hundred or more.

    TRUNCATE replaces every table's files (and its indexes' and sequences'), whether the
    test wrote to it or not; a test writes a handful of rows to a few tables. So only
    the tables holding rows are emptied, with DELETE under ``session_replication_role =
    replica`` (no foreign-key checks, and the audit table's append-only trigger stays
    quiet, as it does for TRUNCATE), and every sequence drawn from restarts. A table
    a test filled with many rows is still truncated (DELETE would be slower there).
    Without the superuser right that setting needs, every table is truncated.
    """

    url: str
    engine: Any = None
    may_replicate: bool = True

    def __post_init__(self) -> None:
        self.engine = create_engine(self.url, pool_size=1, pool_pre_ping=True)

    def empty(self) -> None:
        tables = [table.name for table in Base.metadata.sorted_tables]
        if self.may_replicate:
            try:
                self._delete(tables)
                return
            except ProgrammingError as error:
                if getattr(error.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                    raise
                self.may_replicate = False
        self._truncate(tables)

    def _delete(self, tables: list[str]) -> None:
        counted = " UNION ALL ".join(
            f"SELECT '{name}', (SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT {BULKY_ROWS + 1}) s)"
            for name in tables
        )
        with self.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            rows = {name: count for name, count in conn.execute(text(counted)) if count}
            for name, count in rows.items():
                if count <= BULKY_ROWS:
                    conn.execute(text(f"DELETE FROM {name}"))
            for sequence in conn.execute(USED_SEQUENCES).scalars():
                conn.execute(text(f"ALTER SEQUENCE {sequence} RESTART"))
            bulky = [name for name, count in rows.items() if count > BULKY_ROWS]
            if bulky:
                conn.execute(text(f"TRUNCATE {', '.join(bulky)} RESTART IDENTITY CASCADE"))

    def _truncate(self, tables: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


_EMPTIERS: dict[str, _Emptier] = {}


def _truncate(url: str) -> None:
    """Empty every table of the database at ``url`` and restart its sequences."""
    if url not in _EMPTIERS:
        _EMPTIERS[url] = _Emptier(url)
    _EMPTIERS[url].empty()


@pytest.fixture
def clock() -> MutableClock:
    return MutableClock()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Config overrides for ``app``: a test module overrides this fixture to change them."""
    return {}


_APPS: dict[str, Flask] = {}
"""Apps already built, by their configuration without the database's address."""


def configuration_shape(config: Config) -> str:
    """``config`` less the database's address: what apps and seeds are kept by."""
    return repr(dataclasses.replace(config, database_url=""))


def app_on(overrides: dict[str, Any], config: Config, clock: MutableClock) -> Flask:
    """``create_app(overrides, clock=clock)``, the app itself built once per configuration
    (``config``: the overrides parsed).

    Registering the routes and building the OpenAPI document is most of what
    ``create_app`` costs, and the app holds nothing of a test's beyond its state:
    every later test with the same configuration gets the same app with a fresh
    state (database handle, delivery, caches, limits, clock), bound where ``create_app``
    binds it (``app.extensions`` and the SDK fast path in front of Flask). Every
    state runs on the engines ``engines`` keeps for its database.
    """
    shared = shared_engines(config)
    key = configuration_shape(config)
    app = _APPS.get(key)
    if app is None:
        app = _APPS[key] = create_app(overrides, clock=clock, engines=shared)
        return app
    bind_state(app, create_state(config, clock=clock, engines=shared))
    return app


def bind_state(app: Flask, state: AppState) -> None:
    """Give a built app ``state``, where ``create_app`` binds it: ``app.extensions`` and
    the SDK fast path in front of Flask."""
    app.extensions["flagsvc"] = state
    outer: Any = app.wsgi_app
    proxy = outer if isinstance(outer, ProxyFix) else None
    fast = proxy.app if proxy else outer
    assert isinstance(fast, SnapshotFastPath), f"create_app's WSGI chain changed: {outer!r}"
    fresh = SnapshotFastPath(fast.app, state)
    if proxy:
        proxy.app = fresh
    else:
        app.wsgi_app = fresh  # type: ignore[method-assign]
    metrics.SDK_STREAMS_LIMIT.set(state.config.max_streams)  # a global gauge; the last app set it


@pytest.fixture
def app(
    request: pytest.FixtureRequest,
    database_url: str,
    clock: MutableClock,
    app_config: dict[str, Any],
) -> Iterator[Flask]:
    """The service with the default environments (and, for a test that asks for
    ``secrets``, its tokens and SDK keys), on a fresh database."""
    overrides = {"database_url": database_url, "testing": True, "redis_url": None, **app_config}
    wants_secrets = "secrets" in request.fixturenames
    config = Config.from_env(overrides)  # parsed once: 0.3 ms, a fifth of a seeded setup
    seeded = _seed_sqlite(config, clock, wants_secrets)
    app = app_on(overrides, config, clock)
    state: AppState = app.extensions["flagsvc"]
    if seeded is None:
        with state.db.write() as session:
            environments.ensure_default_environments(session, setup_change(clock))
    elif wants_secrets:
        request.node.stash[SEEDED_SECRETS] = dict(seeded)
    yield app
    # the broker's threads would otherwise outlive the test, thousands of them (the app's
    # state now: ``built_once`` may have given it a new one)
    app.extensions["flagsvc"].close()


def setup_change(clock: MutableClock) -> Change:
    """Who and when for the fixtures' own writes."""
    return Change(SYSTEM, clock(), "test-setup")


SEEDED_SECRETS = pytest.StashKey[dict[str, str]]()
"""The secrets a test's seeded database already holds (``_seed_sqlite``)."""


@dataclass(frozen=True)
class _Seed:
    """A copy of the migrated template after the fixtures' writes, and the secrets in it."""

    path: Path
    secrets: dict[str, str] | None


_SEEDS: dict[tuple[str, str, bool], _Seed] = {}


def _seed_sqlite(config: Config, clock: MutableClock, with_secrets: bool) -> dict[str, str] | None:
    """On SQLite, put a seeded copy in the test's database file; the secrets it holds
    (empty when none were asked for), or None on other backends.

    The default environments (three audited writes) and the secrets (seven more) are
    the same in every test of one configuration and clock: written once per process
    through the same service calls into a copy of the template, then copied with it,
    as the migrations are (``sqlite_template``). PostgreSQL's tests write them each time.
    """
    url = config.database_url
    if not url.startswith("sqlite:///"):
        return None
    key = (configuration_shape(config), clock().isoformat(), with_secrets)
    path = Path(url.removeprefix("sqlite:///"))
    if key not in _SEEDS:
        _SEEDS[key] = _write_seed(config, clock, with_secrets, path)
    restore_sqlite(_SEEDS[key].path, path)
    return _SEEDS[key].secrets or {}


def _write_seed(config: Config, clock: MutableClock, with_secrets: bool, beside: Path) -> _Seed:
    """The fixtures' writes into a new copy of the file at ``beside`` (the template's)."""
    path = beside.with_name(f"seed-{len(_SEEDS)}.db")
    shutil.copyfile(beside, path)
    seed_engines = open_engines(f"sqlite:///{path}")
    state = create_state(
        dataclasses.replace(config, database_url=f"sqlite:///{path}"),
        clock=MutableClock(clock()),
        engines=seed_engines,
    )
    try:
        with state.db.write() as session:
            environments.ensure_default_environments(session, setup_change(clock))
        made = make_secrets(state, clock) if with_secrets else None
    finally:
        state.close()
        seed_engines.dispose()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the copy takes the main file alone
    return _Seed(path, made)


@dataclass(frozen=True)
class _Built:
    """A copy of the database a build left, what the build returned, and the clock then."""

    path: Path
    result: Any
    clock: dict[str, Any]


_BUILT: dict[tuple[str, str, str, str], _Built] = {}
T = TypeVar("T")


def built_once(app: Flask, clock: MutableClock, name: str, build: Callable[[], T]) -> T:
    """``build()``, a scripted history written through the app, played once per process
    on SQLite: a later test starting from the same database gets a copy of the file it
    left, the clock where it left it and what it returned.

    As if the service restarted on that database: the app gets a new state (caches and
    delivery know only what the database says). "The same database" is the same
    configuration, the same clock and the same rows (a signed-in UI session's included);
    anything else, and PostgreSQL, plays ``build`` each time. A history of some
    fifty API calls cost a third of a second per test, a copy a millisecond.
    """
    state: AppState = app.extensions["flagsvc"]
    url = state.config.database_url
    if not url.startswith("sqlite:///"):
        return build()
    path = Path(url.removeprefix("sqlite:///"))
    key = (name, configuration_shape(state.config), repr(vars(clock)), _contents(path))
    built = _BUILT.get(key)
    if built is None:
        result = build()
        copy = path.with_name(f"built-{len(_BUILT)}.db")
        with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(copy)) as target:
            source.backup(target)  # WAL and all
        _BUILT[key] = _Built(copy, deepcopy(result), deepcopy(vars(clock)))
        return result
    state.close()
    restore_sqlite(built.path, path)
    bind_state(app, create_state(state.config, clock=clock, engines=shared_engines(state.config)))
    vars(clock).update(deepcopy(built.clock))
    result = deepcopy(built.result)
    return result  # type: ignore[no-any-return]


def _contents(path: Path) -> str:
    """A digest of every row in the SQLite file at ``path`` (a millisecond for a seed)."""
    digest = hashlib.blake2b()
    with closing(sqlite3.connect(path)) as conn:
        for line in conn.iterdump():
            digest.update(line.encode())
    return digest.hexdigest()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Caller:
    """A test client that always sends one credential."""

    def __init__(self, client: FlaskClient, secret: str | None) -> None:
        self.client = client
        self.secret = secret

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if self.secret:
            merged.setdefault("Authorization", f"Bearer {self.secret}")
        return merged

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        return self.client.open(path, method=method, headers=self._headers(headers), **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def create_flag(caller: Caller, key: str, name: str = "F") -> dict[str, Any]:
    """A flag (off everywhere) with the objective and key result every flag serves."""
    objective = caller.post(
        "/api/v1/objectives", json={"title": "O", "period": "2026-Q4", "owner": "team"}
    ).json
    key_result = caller.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={"title": "K", "metric": "m", "baseline": 0, "target": 1},
    ).json
    body = {"key": key, "name": name, "flow_item": "feature", "key_result_id": key_result["id"]}
    response = caller.post("/api/v1/flags", json=body)
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


@pytest.fixture
def secrets(request: pytest.FixtureRequest, app: Flask, clock: MutableClock) -> dict[str, str]:
    """One token per role plus an SDK key per default environment (``sdk:<env>``)."""
    seeded = request.node.stash.get(SEEDED_SECRETS, None)
    if seeded is not None:
        return seeded
    return make_secrets(app.extensions["flagsvc"], clock)


def make_secrets(state: AppState, clock: MutableClock) -> dict[str, str]:
    """Write a token per role and an SDK key per default environment; their secrets."""
    made: dict[str, str] = {}
    with state.db.write() as session:
        change = Change(SYSTEM, clock(), f"test-{uuid.uuid4().hex[:8]}")
        for role in Role:
            made[role.value] = credentials.create_token(
                session, change, f"{role.value}-token", role
            )[1]
        for env, _, _ in environments.DEFAULT_ENVIRONMENTS:
            made[f"sdk:{env}"] = credentials.create_sdk_key(session, change, env)[1]
    return made


@pytest.fixture
def admin(client: FlaskClient, secrets: dict[str, str]) -> Caller:
    return Caller(client, secrets["admin"])


@pytest.fixture
def engineer(client: FlaskClient, secrets: dict[str, str]) -> Caller:
    return Caller(client, secrets["engineer"])


@pytest.fixture
def marketing(client: FlaskClient, secrets: dict[str, str]) -> Caller:
    return Caller(client, secrets["marketing"])


@pytest.fixture
def viewer(client: FlaskClient, secrets: dict[str, str]) -> Caller:
    return Caller(client, secrets["viewer"])


@pytest.fixture
def sdk(client: FlaskClient, secrets: dict[str, str]) -> Caller:
    """An SDK key for production."""
    return Caller(client, secrets["sdk:production"])


@pytest.fixture
def anonymous(client: FlaskClient) -> Caller:
    return Caller(client, None)
