"""The flagsvc command as an operator uses it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy import text

from flagsvc.cli import main


@pytest.fixture
def cli(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env={"DATABASE_URL": url}, catch_exceptions=False)

    run.url = url  # type: ignore[attr-defined]
    return run


def test_init__fresh_database__prints_only_the_admin_token_on_stdout(cli):
    result = cli("init")
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("fst_")
    assert len(result.stdout.strip().splitlines()) == 1
    assert "development, staging, production" in result.stderr


def test_init__run_twice__creates_nothing_and_prints_no_token(cli):
    cli("init")
    again = cli("init")
    assert again.exit_code == 0
    assert again.stdout == ""


def test_create_token_and_sdk_key__print_the_secret_alone(cli):
    cli("init")
    token = cli("create-token", "--name", "ci", "--role", "engineer")
    key = cli("create-sdk-key", "--environment", "staging")
    assert token.stdout.strip().startswith("fst_") and "\n" not in token.stdout.strip()
    assert key.stdout.strip().startswith("fss_staging_")


def test_create_sdk_key__unknown_environment__fails_with_reason(cli):
    cli("init")
    result = CliRunner().invoke(
        main, ["create-sdk-key", "--environment", "nope"], env={"DATABASE_URL": cli.url}
    )
    assert result.exit_code != 0


def test_audit_verify__intact_then_altered__exit_1_names_event(cli):
    cli("init")
    assert cli("audit", "verify").exit_code == 0
    engine = create_engine(cli.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 2" in result.stdout
