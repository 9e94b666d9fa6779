"""Database handle: engines, sessions and the write-transaction rules per backend.

SQLite (the embedded default) allows one writer at a time. A deferred transaction
that reads first and writes later can fail with ``database is locked`` when another
writer committed in between, so write transactions start with ``BEGIN IMMEDIATE``
on their own engine; readers keep plain ``BEGIN`` and run beside the writer (WAL).
On PostgreSQL one pool serves both and the audit chain takes an advisory lock; reads
run in autocommit. Under PostgreSQL's READ COMMITTED every statement sees its own
snapshot even inside a transaction, so a read transaction bought no consistency, only
two round trips (BEGIN, ROLLBACK), and on the SDK path a request is one indexed
``max(seq)``: the round trips would be most of its database time.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
)
"""What a database that cannot be reached (down, restarting, pool exhausted) raises.

Callers that can answer from memory (cached SDK keys and snapshots) catch these and
nothing else: a programming error must still surface.
"""


@dataclass(frozen=True, slots=True)
class Engines:
    """The engines a ``Database`` runs its units of work on: one pair per database.

    Apart from ``Database`` because an engine holds what outlives any one handle on the
    database, its pooled connections and its compiled-statement cache, while a
    ``Database`` carries per-application hooks on its sessions. A process builds one
    ``Database`` and so one pair; the tests build a ``Database`` per test on the same
    pair, so a statement is compiled once per process instead of once per test.
    """

    url: str
    read: Engine
    write: Engine

    @property
    def is_sqlite(self) -> bool:
        return self.write.dialect.name == "sqlite"

    def dispose(self) -> None:
        """Close pooled connections; the engines stay usable and keep their caches."""
        self.write.dispose()  # on PostgreSQL the read engine shares its pool
        if self.is_sqlite:
            self.read.dispose()


def open_engines(url: str, pool_size: int = 10, pool_timeout: float = 30.0) -> Engines:
    """The engines for ``url``.

    ``pool_size`` connections kept open on PostgreSQL, up to twice as many more under
    load; a unit of work waits ``pool_timeout`` seconds for one, then fails (503).
    SQLite keeps ``pool_size`` connections open too and opens more when busier, never
    waiting for one (its writers queue on the database's lock).
    """
    if make_url(url).get_backend_name() == "sqlite":
        read = _sqlite_engine(url, pool_size, begin="BEGIN")
        return Engines(url, read, _sqlite_engine(url, pool_size, begin="BEGIN IMMEDIATE"))
    # No pre-ping: it costs a round trip per checkout on every SDK request.
    # A connection broken by a database restart fails one unit of work (a
    # 503 the caller retries) and SQLAlchemy then invalidates the whole pool.
    write = create_engine(
        url, pool_size=pool_size, max_overflow=2 * pool_size, pool_timeout=pool_timeout
    )
    return Engines(url, write.execution_options(isolation_level="AUTOCOMMIT"), write)


class Database:
    """Owns the engines and hands out one session per unit of work."""

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        pool_timeout: float = 30.0,
        *,
        engines: Engines | None = None,
    ) -> None:
        """Open engines for ``url`` (``open_engines`` says what the pool settings mean),
        or run on ``engines`` already open for it.

        The hooks (``tag_writes``, ``on_write_commit``) live on this handle's session
        factories, never on the engines, so handles built one after another on the same
        engines never hear each other's commits: what lets the tests give every test a
        fresh handle on engines whose compiled statements outlive it.
        """
        if engines is None:
            engines = open_engines(url, pool_size, pool_timeout)
        elif engines.url != url:
            raise ValueError(f"engines for {engines.url!r}, not {url!r}")
        self.engines = engines
        self.url = url
        self.is_sqlite = engines.is_sqlite
        self.read_engine = engines.read
        self.write_engine = engines.write
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    def tag_writes(self, info: Mapping[str, object]) -> None:
        """Put ``info`` into the ``Session.info`` of every write session from now on.

        How the application hands write paths what they need without a parameter on
        every service call (the audit keys its events are sealed with).
        """
        self._write.configure(info=dict(info))

    def on_write_commit(
        self,
        committed: Callable[[Session], None],
        rolled_back: Callable[[Session], None] | None = None,
    ) -> None:
        """Call ``committed(session)`` after every write transaction commits (and
        ``rolled_back(session)`` after one rolls back).

        The public hook change delivery hangs on: a process learns of its own changes
        the moment they are durable, so it never asks the database what it just wrote.
        Read sessions never call it (they write nothing).
        """
        event.listen(self._write, "after_commit", committed)
        if rolled_back is not None:
            event.listen(self._write, "after_rollback", rolled_back)

    @property
    def dialect(self) -> str:
        """Backend name: ``sqlite`` or ``postgresql``."""
        return self.write_engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """Open a write transaction; commit on success, roll back on any error."""
        with self._write.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a read-only unit of work (rolled back at the end)."""
        with self._read() as session:
            yield session

    def dispose(self) -> None:
        """Close pooled connections (tests, forks)."""
        self.engines.dispose()


def _sqlite_engine(url: str, pool_size: int, *, begin: str) -> Engine:
    """Build a SQLite engine that emits ``begin`` itself and waits on locks.

    Its connections are pooled: opening one costs the three pragmas below, and closing
    the last one checkpoints the write-ahead log into the database and deletes it, so a
    connection per unit of work cost several times the work itself on short requests
    (bench/README.md, "SQLite connections"). Unlimited overflow: a burst never waits
    for a connection, as it never did. An in-memory database (``sqlite://``, tests of
    error pages) is one per connection, so there is nothing to pool.
    """
    pooling: dict[str, Any] = {"pool_size": pool_size, "max_overflow": -1}
    if make_url(url).database in (None, "", ":memory:"):
        pooling = {"poolclass": NullPool}
    engine = create_engine(url, connect_args={"timeout": 30}, **pooling)
    _sqlite_hooks(engine, begin)
    return engine


def _sqlite_hooks(engine: Engine, begin: str) -> None:
    """Set every new connection up (write-ahead log, foreign keys, lock wait) and let
    each transaction start with ``begin`` (``BEGIN IMMEDIATE`` takes the write lock
    up front, so writers queue instead of failing on upgrade)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook below emit BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)
