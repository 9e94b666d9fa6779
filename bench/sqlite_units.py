"""SQLite: a unit of work and an API request with pooled connections vs one per unit.

    .venv/bin/python bench/sqlite_units.py [--rounds 5] [--units 300] [--requests 150]

A migrated SQLite file in a temporary folder, then, in interleaved rounds (so load
changes hit both alike):

- **unit of work**: ``Database.read()`` then ``Database.write()``, one ``SELECT`` each;
- **request**: ``GET /api/v1/flags`` as an admin through Flask's test client (token
  check, last-use note, the list: several units of work);

each once with ``flagsvc.storage.db`` as it is (pooled connections) and once with the
connection-per-unit engine it replaced (``NullPool``: connect, three pragmas, and on
close the write-ahead log checkpointed and deleted). Figures are medians of the rounds'
means, in milliseconds; the load average is printed with them (shared machine: compare
the ratio).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from flagsvc import create_app
from flagsvc.domain.roles import Role
from flagsvc.services import credentials
from flagsvc.services import environments
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Change
from flagsvc.storage import db as db_module
from flagsvc.storage import migrate


def unpooled_engine(url: str, pool_size: int, *, begin: str) -> Engine:
    """The engine before pooling: a connection (and its pragmas) per unit of work."""
    del pool_size
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})
    db_module._sqlite_hooks(engine, begin)
    return engine


POOLED = db_module._sqlite_engine


@contextmanager
def engines(pooled: bool) -> Iterator[None]:
    db_module._sqlite_engine = POOLED if pooled else unpooled_engine
    try:
        yield
    finally:
        db_module._sqlite_engine = POOLED


def unit_of_work(url: str, units: int) -> float:
    database = db_module.Database(url)
    started = time.perf_counter()
    for _ in range(units):
        with database.read() as session:
            session.execute(text("SELECT count(*) FROM flags")).scalar()
        with database.write() as session:
            session.execute(text("SELECT count(*) FROM flags")).scalar()
    elapsed = time.perf_counter() - started
    database.dispose()
    return elapsed / (2 * units) * 1000


def requests(url: str, count: int) -> float:
    app = create_app({"database_url": url, "testing": True, "redis_url": None})
    state = app.extensions["flagsvc"]
    with state.db.write() as session:
        change = Change(SYSTEM, datetime.now(UTC), "bench")
        environments.ensure_default_environments(session, change)
        secret = credentials.create_token(session, change, "bench", Role.ADMIN)[1]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    started = time.perf_counter()
    for _ in range(count):
        assert client.get("/api/v1/flags", headers=headers).status_code == 200
    elapsed = time.perf_counter() - started
    state.broker.close()
    state.db.dispose()
    return elapsed / count * 1000


def measure(label: str, run: Callable[[bool], float], rounds: int) -> None:
    figures: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for pooled in (False, True):
            with engines(pooled):
                figures[pooled].append(run(pooled))
    before, after = statistics.median(figures[False]), statistics.median(figures[True])
    print(
        f"{label:<14} connection per unit {before:7.2f} ms   pooled {after:7.2f} ms   "
        f"{before / after:5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--requests", type=int, default=150)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="flagsvc-sqlite-units-"))
    template = folder / "template.db"
    migrate.upgrade(f"sqlite:///{template}")

    def fresh(name: str) -> str:
        path = folder / f"{name}-{time.monotonic_ns()}.db"
        path.write_bytes(template.read_bytes())
        return f"sqlite:///{path}"

    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    measure("unit of work", lambda _p: unit_of_work(fresh("u"), args.units), args.rounds)
    measure("GET flags", lambda _p: requests(fresh("r"), args.requests), args.rounds)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
