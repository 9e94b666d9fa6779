"""Services called as use cases: a migrated database per test on each backend, the
default environments, and a ``Change`` per role, with no Flask app and no HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flagsvc.domain.roles import Role
from flagsvc.services import environments
from flagsvc.services import okrs
from flagsvc.services.context import SYSTEM
from flagsvc.services.context import Actor
from flagsvc.services.context import Change
from flagsvc.storage.db import Database
from tests.conftest import engines
from tests.services.use_cases import ChangeBy


@pytest.fixture
def database(database_url: str, clock: Any) -> Iterator[Database]:
    """The service's own storage, with development, staging and gated production, on
    the engines the tests share (``tests.conftest.engines``)."""
    database = Database(database_url, engines=engines(database_url))
    with database.write() as session:
        environments.ensure_default_environments(session, Change(SYSTEM, clock(), "setup"))
    yield database
    database.dispose()


@pytest.fixture
def change_by(clock: Any) -> ChangeBy:
    """A change by a token of ``role``, at the clock's time."""

    def make(role: Role) -> Change:
        return Change(Actor(f"{role.value}-token", role, token_id=1), clock(), "req-1")

    return make


@pytest.fixture
def key_result_id(database: Database, change_by: ChangeBy) -> int:
    with database.write() as session:
        change = change_by(Role.ENGINEER)
        objective = okrs.create_objective(
            session, change, {"title": "Grow", "period": "2026-Q4", "owner": "Ana"}
        )
        fields = {
            "title": "Activation",
            "metric": "rate",
            "baseline": 10,
            "target": 20,
            "unit": "%",
        }
        return okrs.create_key_result(session, change, objective.id, fields).id
