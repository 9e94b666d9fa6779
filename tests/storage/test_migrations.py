"""One Alembic history from an empty database, up and down, on each backend."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import JSON
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text

from flagsvc.storage import migrate
from flagsvc.storage.models import Base
from tests.conftest import PG_URL
from tests.conftest import service_missing
from tests.conftest import worker_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    if not PG_URL:
        service_missing("PostgreSQL", "TEST_DATABASE_URL is not set")
    url = worker_database(PG_URL)  # this xdist worker's own: two would race on one schema
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


# --- 0008: payloads into typed variations, with data in the database ----------------------

BEFORE_VARIATIONS = "0007_unique_token_names"
PAYLOADS = {
    "plain": None,
    "text": "banner-v2",
    "number": 42,
    "huge": 2**60,
    "ratio": 0.25,
    "config": {"color": "blue", "limits": [1, 2.5]},
    "listing": [1, "two"],
    "said-true": True,
}
EXPECTED = {  # key: (value_type, variations as (key, value), on, off)
    "plain": ("boolean", [("on", True), ("off", False)], "on", "off"),
    "text": ("string", [("on", "banner-v2")], "on", None),
    "number": ("integer", [("on", 42)], "on", None),
    "huge": ("integer", [("on", 2**60)], "on", None),
    "ratio": ("float", [("on", 0.25)], "on", None),
    "config": ("object", [("on", {"color": "blue", "limits": [1, 2.5]})], "on", None),
    "listing": ("object", [("on", [1, "two"])], "on", None),
    "said-true": ("boolean", [("on", True), ("off", False)], "on", "off"),
}
NOW = "2026-12-01 10:00:00"


def _seed_flags(url: str) -> None:
    """Flags of the former model (one optional payload), with a state and a cohort."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO environments (id, key, name, gated, created_at, version) "
                "VALUES (1, 'production', 'Production', true, :now, 1)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO objectives (id, title, description, period, owner, created_at,"
                " version) VALUES (1, 'O', '', '2026-Q4', 'web', :now, 1)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO key_results (id, objective_id, title, metric, baseline, target,"
                " current, unit, created_at, version) VALUES (1, 1, 'K', 'm', 0, 1, 0, '', :now, 1)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO cohorts (id, key, name, description, rules, opt_in, created_at,"
                " version) VALUES (1, 'beta', 'Beta', '', '[]', false, :now, 1)"
            ),
            {"now": NOW},
        )
        for n, (key, payload) in enumerate(PAYLOADS.items(), start=1):
            conn.execute(
                text(
                    "INSERT INTO flags (id, key, name, description, flow_item, key_result_id,"
                    " payload, salt, created_at, version) VALUES (:id, :key, :key, '',"
                    " 'feature', 1, :payload, 'salt', :now, 1)"
                ),
                {"id": n, "key": key, "payload": _json(payload), "now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO flag_states (id, flag_id, environment_id, stage,"
                    " rollout_basis_points, killed, updated_at, version)"
                    " VALUES (:id, :id, 1, 'early_access', 0, false, :now, 1)"
                ),
                {"id": n, "now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO flag_state_cohorts (flag_state_id, cohort_id, position)"
                    " VALUES (:id, 1, 0)"
                ),
                {"id": n},
            )
    engine.dispose()


def _json(value: object) -> str | None:
    import json

    return None if value is None else json.dumps(value)


def _rows(url: str, sql: str, **json_columns: object) -> list[tuple]:
    """Rows of ``sql``; the columns named in ``json_columns`` decoded as JSON on both
    backends (psycopg decodes json itself, SQLite returns the text)."""
    statement = (
        text(sql).columns(**dict.fromkeys(json_columns, JSON)) if json_columns else text(sql)
    )
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(row) for row in conn.execute(statement)]
    engine.dispose()
    return rows


def test_variations_migration__payloads__become_typed_variations_and_come_back(empty_database):
    # Given flags of the former model with every kind of payload
    migrate.upgrade(empty_database, BEFORE_VARIATIONS)
    _seed_flags(empty_database)
    # When the variations migration runs
    migrate.upgrade(empty_database)
    # Then each flag has the type, variations and pointers its payload stands for
    rows = _rows(
        empty_database,
        "SELECT key, value_type, variations, on_variation, off_variation FROM flags",
        variations=JSON,
    )
    migrated = {
        key: (value_type, [(v["key"], v["value"]) for v in variations], on, off)
        for key, value_type, variations, on, off in rows
    }
    assert migrated == EXPECTED
    assert type(migrated["ratio"][1][0][1]) is float and type(migrated["number"][1][0][1]) is int
    assert _rows(empty_database, "SELECT variation FROM flag_state_cohorts") == [(None,)] * 8
    # And the schema matches the models
    command.check(migrate.alembic_config(empty_database))
    # When it is undone, Then every payload is back (a true payload was a boolean flag)
    migrate.downgrade(empty_database, BEFORE_VARIATIONS)
    restored = dict(_rows(empty_database, "SELECT key, payload FROM flags", payload=JSON))
    assert restored == {
        **PAYLOADS,
        "said-true": None,
    }


def test_variations_migration__downgrade_with_values_the_old_model_lacks__refused(empty_database):
    # Given a migrated database where one flag has an off value and a cohort its own variation
    migrate.upgrade(empty_database, BEFORE_VARIATIONS)
    _seed_flags(empty_database)
    migrate.upgrade(empty_database)
    engine = create_engine(empty_database)
    with engine.begin() as conn:
        variations = '[{"key": "on", "value": "a"}, {"key": "old", "value": "b"}]'
        conn.execute(
            text("UPDATE flags SET variations = :v, off_variation = 'old' WHERE key = 'text'"),
            {"v": variations},
        )
        conn.execute(
            text("UPDATE flag_state_cohorts SET variation = 'old' WHERE flag_state_id = 2")
        )
    engine.dispose()
    # When it is undone, Then it refuses, naming what would be lost, and nothing changed
    with pytest.raises(RuntimeError, match="text") as refused:
        migrate.downgrade(empty_database, BEFORE_VARIATIONS)
    assert "1 cohort attachments" in str(refused.value)
    assert _rows(empty_database, "SELECT off_variation FROM flags WHERE key = 'text'") == [("old",)]


def test_member_counts__existing_members__counted_by_the_upgrade(empty_database):
    migrate.upgrade(empty_database, "0014_early_adopters")
    engine = create_engine(empty_database)
    cohort = (
        "INSERT INTO cohorts (id, key, name, description, rules, opt_in, created_at, version) "
        "VALUES (:id, :key, 'C', '', '[]', false, '2026-01-01 00:00:00', 1)"
    )
    member = (
        "INSERT INTO cohort_members (cohort_id, user_key, source, added_at) "
        "VALUES (:cohort, :user, 'import', '2026-01-01 00:00:00')"
    )
    with engine.begin() as conn:
        conn.execute(text(cohort), [{"id": 1, "key": "three"}, {"id": 2, "key": "none"}])
        conn.execute(text(member), [{"cohort": 1, "user": f"u{n}"} for n in range(3)])
    migrate.upgrade(empty_database)
    with engine.connect() as conn:
        counts = dict(conn.execute(text("SELECT key, member_count FROM cohorts")).all())
    engine.dispose()
    assert counts == {"three": 3, "none": 0}
