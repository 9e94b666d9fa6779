"""Configuration: every variable validated at start, all problems at once, production refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flagsvc import create_app
from flagsvc.config import DEV_SECRET_KEY
from flagsvc.config import EX_CONFIG
from flagsvc.config import ConfigError
from flagsvc.config import load
from flagsvc.config import variable_names
from flagsvc.serving import gunicorn_argv
from flagsvc.serving import settings

ROOT = Path(__file__).resolve().parents[1]
GOOD_SECRET = "s" * 40
PRODUCTION = {
    "FLAGSVC_ENV": "production",
    "FLAGSVC_SECRET_KEY": GOOD_SECRET,
    "DATABASE_URL": "postgresql://flagsvc:pw@db:5432/flagsvc",
}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(env)
    return list(refused.value.problems)


def test_load__empty_environment__development_defaults():
    config = load({})
    assert config.mode == "development" and not config.production
    assert config.database_url.startswith("sqlite:///") and config.database_url.endswith(
        "flagsvc.db"
    )
    assert config.secret_key == DEV_SECRET_KEY
    assert (config.max_streams, config.workers, config.worker_class) == (2000, 1, "gevent")
    assert config.redis_url is None and config.proxy_hops == 0 and config.access_log


def test_load__empty_values__count_as_unset():
    assert load({"FLAGSVC_MAX_STREAMS": "", "REDIS_URL": " "}) == load({})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_load__database_url__normalised_to_psycopg(given, expected):
    assert load({"DATABASE_URL": given}).database_url == expected


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("DATABASE_URL", "mysql://u@h/db", "scheme 'mysql' is not supported"),
        ("DATABASE_URL", "flagsvc.db", "is not a URL"),
        ("DATABASE_URL", "postgresql://h:54x2/db", "port in 'h:54x2' is not a number"),
        ("DATABASE_URL", "postgresql://h:5432/", "names no database"),
        ("DATABASE_URL", "sqlite:////no/such/folder/x.db", "folder '/no/such/folder'"),
        ("REDIS_URL", "http://cache:6379", "scheme 'http' is not supported"),
        ("REDIS_URL", "localhost:6379", "not a URL is not supported"),
        ("REDIS_URL", "redis://cache:6379/zero", "database 'zero' is not a number"),
        ("FLAGSVC_ENV", "prod", "must be one of: development, production"),
        ("FLAGSVC_MAX_STREAMS", "lots", "Not a valid integer"),
        ("FLAGSVC_MAX_STREAMS", "0", "must be at least 1"),
        ("FLAGSVC_STREAM_KEEPALIVE_SECONDS", "-1", "must be greater than 0"),
        ("FLAGSVC_HEAD_POLL_SECONDS", "nan", "not permitted"),
        ("FLAGSVC_PROXY_HOPS", "-1", "must be 0 or more"),
        ("FLAGSVC_MIGRATIONS", "/tmp", "holds no Alembic env.py"),
        ("FLAGSVC_BIND", "0.0.0.0:http", "expected host:port"),
        ("FLAGSVC_WORKERS", "2.5", "Not a valid integer"),
        ("FLAGSVC_WORKER_CLASS", "sync", "must be one of: gevent, gthread"),
        ("FLAGSVC_WORKER_CONNECTIONS", "0", "must be at least 1"),
        ("FLAGSVC_THREADS", "many", "Not a valid integer"),
        ("FLAGSVC_ACCESS_LOG", "maybe", "Not a valid boolean"),
    ],
)
def test_load__bad_value__one_line_naming_variable_value_and_reason(name, value, reason):
    (line,) = problems({name: value})
    assert line.startswith(f"{name}={value!r}: ")
    assert reason in line


def test_load__several_bad_values__reports_every_one():
    found = problems(
        {"DATABASE_URL": "mysql://h/db", "REDIS_URL": "http://x", "FLAGSVC_THREADS": "x"}
    )
    assert [line.split("=")[0] for line in found] == [
        "DATABASE_URL",
        "REDIS_URL",
        "FLAGSVC_THREADS",
    ]


def test_load__password_in_url__never_shown():
    (line,) = problems({"DATABASE_URL": "mysql://admin:hunter2@h/db"})
    assert "hunter2" not in line and "admin:***@h" in line


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "required in production"),
        (DEV_SECRET_KEY, "is the published development default"),
        ("short-but-not-default", "must be at least 32 characters in production, got 21"),
    ],
)
def test_load__production_without_a_real_secret__refused(secret, reason):
    env = {k: v for k, v in PRODUCTION.items() if k != "FLAGSVC_SECRET_KEY"}
    if secret is not None:
        env["FLAGSVC_SECRET_KEY"] = secret
    (line,) = problems(env)
    assert line.startswith("FLAGSVC_SECRET_KEY") and reason in line
    assert secret is None or secret not in line  # never echo a secret


def test_load__production_without_database_url__refused_with_other_problems():
    env = {"FLAGSVC_ENV": "production", "FLAGSVC_MAX_STREAMS": "x"}
    found = problems(env)
    assert [line.split("=")[0].split(" ")[0] for line in found] == [
        "DATABASE_URL",
        "FLAGSVC_SECRET_KEY",
        "FLAGSVC_MAX_STREAMS",
    ]


def test_load__production_with_secret_and_database__accepted():
    config = load(PRODUCTION)
    assert config.production and config.secret_key == GOOD_SECRET


def test_create_app__production__session_cookie_secure_and_proxy_headers_trusted(monkeypatch):
    for name, value in {
        **PRODUCTION,
        "DATABASE_URL": "sqlite://",
        "FLAGSVC_PROXY_HOPS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SECRET_KEY"] == GOOD_SECRET
    seen = {}
    app.add_url_rule("/who", "who", lambda: seen.update(ip=_remote(), scheme=_scheme()) or "")
    app.test_client().get(
        "/who", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    )
    assert seen == {"ip": "203.0.113.9", "scheme": "https"}


def _remote():
    from flask import request

    return request.remote_addr


def _scheme():
    from flask import request

    return request.scheme


def test_create_app__development__cookie_not_secure_and_forwarded_for_ignored(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is False
    seen = {}
    app.add_url_rule("/who", "who", lambda: seen.update(ip=_remote()) or "")
    app.test_client().get("/who", headers={"X-Forwarded-For": "203.0.113.9"})
    assert seen["ip"] != "203.0.113.9"


def test_serving_settings__from_validated_environment():
    made = settings(
        {"FLAGSVC_WORKERS": "3", "FLAGSVC_WORKER_CLASS": "gthread", "FLAGSVC_ACCESS_LOG": "0"}
    )
    assert (made["workers"], made["worker_class"], made["accesslog"]) == (3, "gthread", None)
    with pytest.raises(ConfigError):
        settings({"FLAGSVC_WORKERS": "three"})


def test_gunicorn_argv__counts_only_when_given__so_the_environment_applies():
    bare = gunicorn_argv(host="0.0.0.0", port=8000)
    assert "--workers" not in bare and "--threads" not in bare
    assert bare[-1] == "flagsvc.wsgi:app" and "0.0.0.0:8000" in bare
    given = gunicorn_argv(host="h", port=1, workers=2, threads=4)
    assert given[given.index("--workers") + 1] == "2" and given[given.index("--threads") + 1] == "4"


def test_readme__configuration_table__lists_exactly_the_variables_read():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(variable_names().values())


# Processes as an operator starts them: non-zero status, the problems on stderr, no traceback.
BAD = {"DATABASE_URL": "mysql://h/db", "FLAGSVC_MAX_STREAMS": "lots"}
FLAGSVC = [sys.executable, "-c", "from flagsvc.cli import main; main()"]


def run(argv: list[str], extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGSVC_")}
    env.update(extra)
    env.pop("REDIS_URL", None)
    return subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )


def assert_refused(done: subprocess.CompletedProcess[str], status: int = EX_CONFIG) -> None:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    assert "DATABASE_URL='mysql://h/db': scheme 'mysql' is not supported" in done.stderr
    assert "FLAGSVC_MAX_STREAMS='lots': Not a valid integer" in done.stderr


@pytest.mark.parametrize(
    "command", [["serve"], ["serve", "--with-scheduler"], ["init"], ["scheduler", "--once"]]
)
def test_flagsvc_command__bad_environment__exit_78_with_every_problem(command, tmp_path):
    assert_refused(run([*FLAGSVC, *command], BAD, tmp_path))


def test_flagsvc_serve__production_with_default_secret__refused(tmp_path):
    env = {**PRODUCTION, "FLAGSVC_SECRET_KEY": DEV_SECRET_KEY}
    done = run([*FLAGSVC, "serve"], env, tmp_path)
    assert done.returncode == EX_CONFIG and "Traceback" not in done.stderr
    assert "FLAGSVC_SECRET_KEY=<hidden, 36 characters>: is the published development default" in (
        done.stderr
    )


def test_gunicorn_with_our_config__bad_environment__master_exits_78(tmp_path):
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(ROOT / "gunicorn.conf.py"),
        "flagsvc.wsgi:app",
    ]
    assert_refused(run(argv, {**BAD, "FLAGSVC_BIND": "127.0.0.1:0"}, tmp_path))


def test_gunicorn_bare__bad_environment__stops_with_app_load_error(tmp_path):
    argv = [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "flagsvc.wsgi:app"]
    done = run(argv, BAD, tmp_path)
    assert done.returncode == 4  # gunicorn's "App failed to load": the master stops
    assert "scheme 'mysql' is not supported" in done.stderr
    assert "Traceback" not in done.stderr


AUDIT_KEYS = ("n" * 40, "o" * 32)


def test_audit_key__several__current_first_and_never_shown():
    config = load({"FLAGSVC_AUDIT_KEY": f"{AUDIT_KEYS[0]}, {AUDIT_KEYS[1]}"})
    assert config.audit_keys == AUDIT_KEYS
    assert config.summary()["FLAGSVC_AUDIT_KEY"] == "(set, 2 keys)"
    assert load({}).audit_keys == () and load({}).summary()["FLAGSVC_AUDIT_KEY"] == "(not set)"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("short-key", "key 1 has 9 characters, at least 32"),
        (f"{'n' * 40},", "key 2 has 0 characters"),
        (f"{'n' * 40},{'n' * 40}", "lists the same key twice"),
    ],
)
def test_audit_key__bad__refused_without_showing_it(value, reason):
    (line,) = problems({"FLAGSVC_AUDIT_KEY": value})
    assert line.startswith("FLAGSVC_AUDIT_KEY=<hidden") and reason in line
    assert "n" * 40 not in line
