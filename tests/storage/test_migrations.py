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
