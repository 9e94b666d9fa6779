"""The flagsvc command as an operator uses it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from flagsvc_sdk.engine import load_snapshot
from sqlalchemy import create_engine
from sqlalchemy import text

from flagsvc import cli as cli_module
from flagsvc import create_app
from flagsvc.cli import main
from flagsvc.domain.actions import Action
from flagsvc.services import scheduler
from flagsvc.services.scheduler import LaunchOutcome
from tests.conftest import Caller
from tests.conftest import create_flag
from tests.tamper import around_triggers


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


def test_create_token__name_taken__exit_1_naming_it(cli):
    cli("init")
    assert cli("create-token", "--name", "ci", "--role", "viewer").exit_code == 0
    again = CliRunner().invoke(
        main, ["create-token", "--name", "ci", "--role", "admin"], env={"DATABASE_URL": cli.url}
    )
    assert again.exit_code == 1 and "token 'ci' already exists" in again.stderr


def test_create_sdk_key__unknown_environment__one_line_and_exit_1(cli):
    cli("init")
    result = CliRunner().invoke(
        main, ["create-sdk-key", "--environment", "nope"], env={"DATABASE_URL": cli.url}
    )
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == ["Error: environment 'nope' does not exist"]


def test_any_command__database_unreachable__one_line_no_traceback_exit_1():
    result = CliRunner().invoke(
        main,
        ["create-sdk-key", "--environment", "staging"],
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot use the database: ")
    assert "Traceback" not in result.output


def test_version__prints_name_and_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"flagsvc \d+\.\d+\.\d+\S*\n", result.stdout)


def test_scheduler_interval__the_schedulers_own_default():
    assert cli_module.SCHEDULER_INTERVAL == scheduler.DEFAULT_INTERVAL


def test_import__no_service_sqlalchemy_or_flask__serve_execs_gunicorn_at_once():
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, flagsvc.cli; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    heavy = {"flask", "sqlalchemy", "flagsvc.services", "flagsvc.storage", "flagsvc.delivery"}
    assert heavy.isdisjoint(imported)


def test_command__builds_no_app__collector_on_and_its_state_frozen(cli):
    """A command uses the state, never the HTTP app: it imports neither the API nor the
    UI (0.4 CPU-s of every command); what the state's build made is out of the garbage
    collector's reach, and the collector runs again for the command's own work."""
    cli("init")
    probe = (
        "import atexit, gc, json, sys\n"
        "atexit.register(lambda: print(json.dumps({"
        "'web': [m for m in ('flagsvc.api', 'flagsvc.ui', 'flask_smorest') if m in sys.modules],"
        "'collecting': gc.isenabled(), 'frozen': gc.get_freeze_count()}), file=sys.stderr))\n"
        "from flagsvc.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "audit", "head"],
        env={**os.environ, "DATABASE_URL": cli.url},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(done.stderr.strip().splitlines()[-1])
    assert seen["web"] == []
    assert seen["collecting"] is True
    assert seen["frozen"] > 10_000  # the services', SQLAlchemy's and the state's objects


def test_welcome_block__framed_with_url_and_token():
    block = cli_module.welcome_block("0.0.0.0", 8000, "fst_secret").splitlines()
    assert block[0] == block[-1] and set(block[0]) == {"+", "-"}
    assert all(line.startswith("| ") and line.endswith(" |") for line in block[1:-1])
    assert len({len(line) for line in block}) == 1
    text = "\n".join(block)
    assert "open http://127.0.0.1:8000/ui/ and sign in with this token" in text
    assert "fst_secret" in text


def test_welcome_block__no_new_token__says_how_to_make_one():
    text = cli_module.welcome_block("127.0.0.1", 8001, None)
    assert "http://127.0.0.1:8001/ui/" in text and "flagsvc create-token" in text


def test_serve_init__text_logs_then_the_welcome_block_last(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "FLAGSVC_LOG_FORMAT": "text",
    }
    env.pop("REDIS_URL", None)
    argv = [str(Path(sys.executable).with_name("flagsvc")), "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*argv, "--with-scheduler", "--init"], env=env, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if "a password manager" in line:
                lines.append(server.stderr.readline().rstrip("\n"))
                break
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
    assert not [line for line in lines if line.lstrip().startswith("{")]  # no JSON lines
    assert any("The scheduler runs beside gunicorn" in line for line in lines)
    assert lines[-1].startswith("+--")
    text = "\n".join(lines)
    assert f"open http://127.0.0.1:{port}/ui/ and sign in with this token" in text
    assert re.search(r"\| +fst_\S+ +\|", text)


def test_sdk_keys__listed_then_revoked__audited_and_refused(cli):
    cli("init")
    key = cli("create-sdk-key", "--environment", "staging").stdout.strip()
    listed = cli("list-sdk-keys", "--environment", "staging").stdout.splitlines()
    key_id, prefix, *_rest, status = listed[0].split("\t")
    assert key.startswith(prefix.rstrip("…")) and status == "live"
    revoked = cli("revoke-sdk-key", "--environment", "staging", "--id", key_id)
    assert revoked.exit_code == 0 and f"SDK key {key_id}" in revoked.stderr
    again = cli("list-sdk-keys", "--environment", "staging").stdout.splitlines()[0]
    assert again.split("\t")[-1].startswith("revoked ")
    engine = create_engine(cli.url)
    with engine.connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_events")).scalars().all()
    engine.dispose()
    assert actions.count(Action.SDK_KEY_REVOKED) == 1


def test_revoke_sdk_key__key_of_another_environment__fails_changing_nothing(cli):
    cli("init")
    cli("create-sdk-key", "--environment", "staging")
    key_id = cli("list-sdk-keys", "--environment", "staging").stdout.split("\t")[0]
    result = CliRunner().invoke(
        main,
        ["revoke-sdk-key", "--environment", "production", "--id", key_id],
        env={"DATABASE_URL": cli.url},
    )
    assert result.exit_code == 1 and f"sdk_key {key_id}" in result.stderr
    assert cli("list-sdk-keys", "--environment", "staging").stdout.rstrip().endswith("live")


def test_audit_verify__intact_then_altered__exit_1_names_event(cli):
    cli("init")
    assert cli("audit", "verify").exit_code == 0
    engine = create_engine(cli.url)
    with engine.begin() as conn:
        around_triggers(conn)
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 2" in result.stdout


AUDIT_KEY = "a" * 48


def test_audit_head__prints_seq_and_hash_alone(cli):
    cli("init")
    head = cli("audit", "head").stdout.strip()
    seq, digest = head.split(":")
    assert int(seq) >= 3 and len(digest) == 64 and "\n" not in head


def test_audit_verify__against_a_kept_head__catches_a_rewrite_of_the_end(cli):
    cli("init")
    kept = cli("audit", "head").stdout.strip()
    assert cli("audit", "verify", "--head", kept[: kept.index(":") + 14]).exit_code == 0
    engine = create_engine(cli.url)
    with engine.begin() as conn:
        around_triggers(conn)
        conn.execute(
            text("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
        )
    engine.dispose()
    assert cli("audit", "verify").exit_code == 0  # the chain alone cannot see it
    result = cli("audit", "verify", "--head", kept)
    assert result.exit_code == 1 and "removed from the end" in result.stdout


def test_audit_verify__malformed_head__usage_error(cli):
    cli("init")
    result = CliRunner().invoke(
        main, ["audit", "verify", "--head", "12:abc"], env={"DATABASE_URL": cli.url}
    )
    assert result.exit_code == 2 and "SEQ:HASH" in result.output


def test_init__audit_key_set_later__seals_the_chain_once(cli):
    cli("init")
    env = {"DATABASE_URL": cli.url, "FLAGSVC_AUDIT_KEY": AUDIT_KEY}
    runner = CliRunner()
    unsealed = runner.invoke(main, ["audit", "verify"], env=env)
    assert unsealed.exit_code == 1 and "no event is sealed" in unsealed.stdout
    sealed = runner.invoke(main, ["init"], env=env)
    assert "audit chain sealed" in sealed.stderr
    assert "audit chain sealed" not in runner.invoke(main, ["init"], env=env).stderr
    verified = runner.invoke(main, ["audit", "verify"], env=env)
    assert verified.exit_code == 0 and "sealed with the audit key" in verified.stdout


def test_check_config__valid__prints_settings_with_secret_hidden_and_warns_on_typos(tmp_path):
    env = {
        "DATABASE_URL": "postgresql://flagsvc:hunter2@db:5432/flagsvc",
        "FLAGSVC_ENV": "production",
        "FLAGSVC_SECRET_KEY": "k" * 48,
        "FLAGSVC_MAX_STREAM": "10",  # a typo of FLAGSVC_MAX_STREAMS
    }
    result = CliRunner().invoke(main, ["check-config"], env=env)
    assert result.exit_code == 0
    assert "FLAGSVC_ENV=production" in result.stdout
    assert "DATABASE_URL=postgresql+psycopg://flagsvc:***@db:5432/flagsvc" in result.stdout
    assert "FLAGSVC_SECRET_KEY=(set, 48 characters)" in result.stdout
    assert "hunter2" not in result.output and "k" * 48 not in result.output
    assert "FLAGSVC_MAX_STREAM is not a flagsvc setting" in result.stderr
    assert "configuration valid (production mode)" in result.stderr


def test_check_config__bad__exit_78_listing_every_problem():
    env = {"FLAGSVC_ENV": "production", "REDIS_URL": "http://cache"}
    result = CliRunner().invoke(main, ["check-config"], env=env)
    assert result.exit_code == 78
    assert "DATABASE_URL (not set): required in production" in result.stderr
    assert "REDIS_URL='http://cache': scheme 'http' is not supported" in result.stderr
    assert "FLAGSVC_SECRET_KEY (not set): required in production" in result.stderr


def test_help__bad_configuration__still_shows_help():
    result = CliRunner().invoke(main, ["serve", "--help"], env={"FLAGSVC_MAX_STREAMS": "x"})
    assert result.exit_code == 0 and "--with-scheduler" in result.stdout


def test_create_token__bad_configuration__exit_78_without_touching_the_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'never.db'}"
    env = {"DATABASE_URL": url, "FLAGSVC_WORKERS": "0"}
    result = CliRunner().invoke(main, ["create-token", "--name", "n", "--role", "admin"], env=env)
    assert result.exit_code == 78
    assert "FLAGSVC_WORKERS='0': must be at least 1" in result.stderr
    assert not (tmp_path / "never.db").exists()


def test_init__flag_states_lost__repaired_dark_and_audited(cli):
    # Given a flag, then a database that lost two of its states (the race of issue 10)
    admin = cli("init").stdout.strip()
    app = create_app({"database_url": cli.url, "testing": True, "redis_url": None})
    key = create_flag(Caller(app.test_client(), admin), "lost-states")["key"]
    app.extensions["flagsvc"].close()
    engine = create_engine(cli.url)
    with engine.begin() as conn:
        flag_id = conn.execute(text("SELECT id FROM flags WHERE key = :k"), {"k": key}).scalar_one()
        conn.execute(
            text(
                "DELETE FROM flag_states WHERE flag_id = :id AND environment_id IN "
                "(SELECT id FROM environments WHERE key IN ('staging', 'production'))"
            ),
            {"id": flag_id},
        )
    # When init runs again
    result = cli("init")
    # Then both are back, dark, each audited, and the chain still verifies
    assert result.exit_code == 0
    assert f"{key} in staging, {key} in production" in result.stderr
    with engine.connect() as conn:
        stages = dict(
            conn.execute(
                text(
                    "SELECT e.key, s.stage FROM flag_states s JOIN environments e "
                    "ON e.id = s.environment_id WHERE s.flag_id = :id"
                ),
                {"id": flag_id},
            ).all()
        )
        events = conn.execute(
            text("SELECT flag_key, environment FROM audit_events WHERE action = :a ORDER BY seq"),
            {"a": Action.FLAG_STATE_REPAIRED.value},
        ).all()
    engine.dispose()
    assert set(stages) == {"development", "staging", "production"}
    assert stages["staging"] == stages["production"] == "off"
    assert [tuple(e) for e in events] == [(key, "staging"), (key, "production")]
    assert cli("audit", "verify").exit_code == 0
    assert "repaired" not in cli("init").stderr  # nothing left to repair


def test_export_snapshot__stdout__the_snapshot_json_alone(cli):
    cli("init")
    result = cli("export-snapshot", "--environment", "staging")
    assert result.exit_code == 0
    snapshot = load_snapshot(json.loads(result.stdout))  # a bootstrap file the SDK loads
    assert (snapshot.environment, snapshot.version) == (
        "staging",
        int(cli("audit", "head").stdout.split(":")[0]),
    )


def test_export_snapshot__output__written_whole_and_loadable(cli, tmp_path):
    cli("init")
    target = tmp_path / "flags-bootstrap.json"
    result = cli("export-snapshot", "--environment", "production", "--output", str(target))
    assert result.exit_code == 0 and result.stdout == ""
    assert "production" in result.stderr
    assert load_snapshot(json.loads(target.read_bytes())).environment == "production"


def test_export_snapshot__spec_1__for_sdk_1_0_bootstrap_files(cli):
    cli("init")
    result = cli("export-snapshot", "--environment", "staging", "--spec", "1")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["spec_version"] == 1 and load_snapshot(doc).environment == "staging"


def test_export_snapshot__unknown_environment__exit_1_naming_it(cli):
    cli("init")
    result = CliRunner().invoke(
        main, ["export-snapshot", "--environment", "nope"], env={"DATABASE_URL": cli.url}
    )
    assert result.exit_code == 1 and "nope" in result.stderr


def test_launch_outcome__logged_as_a_sentence():
    planned = datetime(2026, 12, 2, 19, 32, tzinfo=UTC)
    ran = LaunchOutcome("sso-saml", "production", planned, ran=True)
    skipped = LaunchOutcome("sso-saml", "production", planned, False, "the kill switch is on")
    assert ran.sentence() == (
        "The launch of sso-saml in production planned for 2026-12-02 19:32 UTC ran."
    )
    assert skipped.sentence().endswith("was skipped: the kill switch is on.")
    assert "LaunchOutcome(" not in ran.sentence()
