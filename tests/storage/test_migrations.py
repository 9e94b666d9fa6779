"""One Alembic history from an empty database, up and down, on each backend."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text

from flagsvc.storage import migrate
from flagsvc.storage.models import Base
from tests.conftest import PG_URL
from tests.conftest import service_missing


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    if not PG_URL:
        service_missing("PostgreSQL", "TEST_DATABASE_URL is not set")
    url = PG_URL
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS migrations_test CASCADE"))
        conn.execute(text("CREATE SCHEMA migrations_test"))
    engine.dispose()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3Dmigrations_test"


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names - {"alembic_version"}


def test_upgrade__from_empty__creates_every_model_table(empty_database):
    migrate.upgrade(empty_database)
    assert _tables(empty_database) == set(Base.metadata.tables)


def test_downgrade__to_base__leaves_no_table_and_upgrades_again(empty_database):
    migrate.upgrade(empty_database)
    migrate.downgrade(empty_database, "base")
    assert _tables(empty_database) == set()
    migrate.upgrade(empty_database)
    assert _tables(empty_database) == set(Base.metadata.tables)


def test_models__after_upgrade__match_migrations(empty_database):
    # Given a database at head, When Alembic compares it with the models,
    # Then nothing is missing from the history (alembic check raises otherwise).
    migrate.upgrade(empty_database)
    command.check(migrate.alembic_config(empty_database))


def test_unique_token_names__existing_duplicates__renamed_oldest_keeps_its_name(empty_database):
    migrate.upgrade(empty_database, "0006_ui_sessions")
    engine = create_engine(empty_database)
    token = (
        "INSERT INTO api_tokens (id, name, role, token_hash, prefix, created_at) "
        "VALUES (:id, :name, 'viewer', :hash, 'fst_x', '2026-01-01 00:00:00')"
    )
    names = ["ci", "ci", "ops #3", "ci", "x" * 100, "x" * 100]
    with engine.begin() as conn:
        for number, name in enumerate(names, start=1):
            conn.execute(text(token), {"id": number, "name": name, "hash": f"{number:064d}"})
    migrate.upgrade(empty_database)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, name FROM api_tokens")).all())
    engine.dispose()
    assert stored[1] == "ci" and stored[2] == "ci #2" and stored[4] == "ci #4"
    assert stored[3] == "ops #3" and stored[5] == "x" * 100
    assert stored[6].endswith(" #6") and len(stored[6]) == 100
    assert len(set(stored.values())) == len(stored)
