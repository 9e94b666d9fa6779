"""Configuration from environment variables only (12-factor), checked all at once at start.

Every variable is read and validated before anything starts; a bad or missing value
stops ``flagsvc serve`` / ``init`` / ``scheduler``, gunicorn's master and ``flagsvc.wsgi``
with one line per problem (every problem, not only the first), on stderr, without a
traceback, and exit status 78 (``EX_CONFIG``). ``FLAGSVC_ENV=production`` refuses the
development secret. The README's "Configuration" table documents every variable;
``tests/test_config.py`` keeps it in step with :class:`EnvironmentSchema`.

Why marshmallow: it already checks every HTTP input here, reports every field's problem
at once, and imports no I/O library, so gunicorn's master can validate before it forks
gevent workers (which must import psycopg and redis only after monkey-patching).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import Any

import marshmallow as ma
from marshmallow import validate

from flagsvc import config_checks as checks

DEV_SECRET_KEY = "flagsvc-development-secret-change-me"
DEVELOPMENT = "development"
PRODUCTION = "production"
MIN_SECRET_LENGTH = 32
EX_CONFIG = 78  # sysexits.h: "configuration error"; supervisors can tell it from a crash
_POSITIVE = validate.Range(min=0, min_inclusive=False, error="must be greater than 0")
_AT_LEAST_ONE = validate.Range(min=1, error="must be at least 1")
_HIDDEN = frozenset({"FLAGSVC_SECRET_KEY", "FLAGSVC_AUDIT_KEY"})


class ConfigError(ValueError):
    """The environment holds bad or missing values; ``problems`` has one line per value."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.report())

    def report(self) -> str:
        """What an operator reads on stderr: every problem, and where the variables are listed."""
        count = len(self.problems)
        head = f"flagsvc: refusing to start: {count} configuration problem{'s' * (count != 1)}"
        tail = "every variable: README.md, Configuration; check with: flagsvc check-config"
        return "\n".join([head, *(f"  {line}" for line in self.problems), f"  ({tail})"])


def _checked(check: Callable[[str], str | None]) -> Callable[[str], None]:
    """A marshmallow validator from a function that returns a problem or None."""

    def validator(value: str) -> None:
        problem = check(value)
        if problem:
            raise ma.ValidationError(problem)

    return validator


def _text(name: str, **kwargs: Any) -> ma.fields.String:
    return ma.fields.String(data_key=name, load_default=None, **kwargs)


def _integer(
    name: str, default: int, at_least: validate.Range = _AT_LEAST_ONE
) -> ma.fields.Integer:
    return ma.fields.Integer(data_key=name, load_default=default, validate=at_least)


def _seconds(name: str, default: float) -> ma.fields.Float:
    return ma.fields.Float(data_key=name, load_default=default, validate=_POSITIVE)


class EnvironmentSchema(ma.Schema):
    """Every variable flagsvc reads: ``data_key`` is its name, the attribute its setting."""

    class Meta:
        unknown = ma.EXCLUDE  # the process environment holds much more than ours

    mode = ma.fields.String(
        data_key="FLAGSVC_ENV",
        load_default=DEVELOPMENT,
        validate=validate.OneOf([DEVELOPMENT, PRODUCTION], error="must be one of: {choices}"),
    )
    database_url = _text("DATABASE_URL", validate=_checked(checks.database_url_problem))
    redis_url = _text("REDIS_URL", validate=_checked(checks.redis_url_problem))
    secret_key = _text("FLAGSVC_SECRET_KEY")
    audit_keys = _text("FLAGSVC_AUDIT_KEY", validate=_checked(checks.audit_key_problem))
    stream_keepalive_seconds = _seconds("FLAGSVC_STREAM_KEEPALIVE_SECONDS", 15.0)
    max_streams = _integer("FLAGSVC_MAX_STREAMS", 2000)
    max_streams_per_key = _integer("FLAGSVC_MAX_STREAMS_PER_KEY", 1000)
    max_streams_per_address = _integer("FLAGSVC_MAX_STREAMS_PER_ADDRESS", 200)
    db_pool_size = _integer("FLAGSVC_DB_POOL_SIZE", 10)
    db_pool_timeout_seconds = _seconds("FLAGSVC_DB_POOL_TIMEOUT_SECONDS", 30.0)
    head_poll_seconds = _seconds("FLAGSVC_HEAD_POLL_SECONDS", 2.0)
    proxy_hops = _integer("FLAGSVC_PROXY_HOPS", 0, validate.Range(min=0, error="must be 0 or more"))
    migrations = _text("FLAGSVC_MIGRATIONS", validate=_checked(checks.migrations_problem))
    bind = ma.fields.String(
        data_key="FLAGSVC_BIND",
        load_default="127.0.0.1:8000",
        validate=_checked(checks.bind_problem),
    )
    workers = _integer("FLAGSVC_WORKERS", 1)
    worker_class = ma.fields.String(
        data_key="FLAGSVC_WORKER_CLASS",
        load_default="gevent",
        validate=validate.OneOf(["gevent", "gthread"], error="must be one of: {choices}"),
    )
    worker_connections = _integer("FLAGSVC_WORKER_CONNECTIONS", 4000)
    threads = _integer("FLAGSVC_THREADS", 32)
    access_log = ma.fields.Boolean(data_key="FLAGSVC_ACCESS_LOG", load_default=True)
    webhook_allow_private = ma.fields.Boolean(
        data_key="FLAGSVC_WEBHOOK_ALLOW_PRIVATE", load_default=False
    )
    webhook_timeout_seconds = _seconds("FLAGSVC_WEBHOOK_TIMEOUT_SECONDS", 10.0)
    # Abuse limits (flagsvc.services.auth_failures, the members import, the body size).
    auth_failure_limit = _integer("FLAGSVC_AUTH_FAILURE_LIMIT", 10)
    auth_failure_window_seconds = _integer("FLAGSVC_AUTH_FAILURE_WINDOW_SECONDS", 60)
    enroll_limit = _integer("FLAGSVC_ENROLL_LIMIT", 600)
    reach_warning_percent = ma.fields.Float(
        data_key="FLAGSVC_REACH_WARNING_PERCENT",
        load_default=25.0,
        validate=validate.Range(min=0, max=100, error="must be between {min} and {max}"),
    )
    enroll_window_seconds = _integer("FLAGSVC_ENROLL_WINDOW_SECONDS", 60)
    max_members_per_request = _integer(
        "FLAGSVC_MAX_MEMBERS_PER_REQUEST",
        100_000,
        validate.Range(min=1, max=1_000_000, error="must be between {min} and {max}"),
    )
    max_body_bytes = _integer(
        "FLAGSVC_MAX_BODY_BYTES",
        16 * 2**20,
        validate.Range(min=2**10, max=2**30, error="must be between {min} and {max} bytes"),
    )
    # Read by flagsvc.observability.logging when logging starts; checked here with the rest.
    log_format = _text("FLAGSVC_LOG_FORMAT", validate=_checked(checks.log_format_problem))
    log_level = _text("FLAGSVC_LOG_LEVEL", validate=_checked(checks.log_level_problem))

    @ma.validates_schema(skip_on_field_errors=False)
    def _production_needs(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """Production mode refuses what is only safe on a developer's machine."""
        if data.get("mode") != PRODUCTION:
            return
        errors: dict[str, str] = {}
        secret_problem = _production_secret_problem(data.get("secret_key"))
        if secret_problem:
            errors["FLAGSVC_SECRET_KEY"] = secret_problem
        if "database_url" in data and data["database_url"] is None:
            errors["DATABASE_URL"] = (
                "required in production (a SQLite file in the working folder is a development "
                "default), e.g. postgresql://user:password@host:5432/flagsvc"
            )
        if errors:
            raise ma.ValidationError(errors)


def _production_secret_problem(secret: str | None) -> str | None:
    """Why ``secret`` cannot sign production sessions, or None."""
    make_one = "make one: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    if secret is None:
        return f"required in production; {make_one}"
    if secret == DEV_SECRET_KEY:
        return f"is the published development default; {make_one}"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"must be at least {MIN_SECRET_LENGTH} characters in production, got {len(secret)}"
    return None


@dataclass(frozen=True, slots=True)
class Config:
    """Settings the application factory, the CLI and gunicorn need (see ``load``)."""

    database_url: str
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    audit_keys: tuple[str, ...] = ()  # the first seals new audit events; all verify
    testing: bool = False
    mode: str = DEVELOPMENT
    stream_keepalive_seconds: float = 15.0
    max_streams: int = 2000
    max_streams_per_key: int = 1000
    max_streams_per_address: int = 200
    db_pool_size: int = 10
    db_pool_timeout_seconds: float = 30.0
    head_poll_seconds: float = 2.0
    proxy_hops: int = 0
    migrations: str | None = None
    bind: str = "127.0.0.1:8000"
    workers: int = 1
    worker_class: str = "gevent"
    worker_connections: int = 4000
    threads: int = 32
    access_log: bool = True
    webhook_allow_private: bool = False  # private/loopback receivers (inside the network, tests)
    webhook_timeout_seconds: float = 10.0
    auth_failure_limit: int = 10
    auth_failure_window_seconds: int = 60
    enroll_limit: int = 600
    reach_warning_percent: float = 25.0  # early access answering more than this share warns
    enroll_window_seconds: int = 60
    max_members_per_request: int = 100_000
    max_body_bytes: int = 16 * 2**20
    log_format: str | None = None  # None: the command's default
    log_level: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        """Production mode: real secret required, session cookies only over HTTPS."""
        return self.mode == PRODUCTION

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None) -> Config:
        """Read and validate the process environment; ``overrides`` (tests) win over it.

        :raise ConfigError: naming every bad or missing variable.
        """
        return replace(load(os.environ), **dict(overrides or {}))

    def summary(self) -> dict[str, str]:
        """The effective value of every variable, secrets and passwords hidden."""
        names = variable_names().items()
        shown = {name: _plain(getattr(self, attribute)) for attribute, name in names}
        hidden = "development default" if self.secret_key == DEV_SECRET_KEY else "set"
        shown["FLAGSVC_SECRET_KEY"] = f"({hidden}, {len(self.secret_key)} characters)"
        count = len(self.audit_keys)
        shown["FLAGSVC_AUDIT_KEY"] = (
            f"(set, {count} key{'s' * (count != 1)})" if count else "(not set)"
        )
        return shown


def variable_names() -> dict[str, str]:
    """Setting attribute -> environment variable, for every variable flagsvc reads."""
    return {name: f.data_key or name for name, f in EnvironmentSchema().fields.items()}


def load(env: Mapping[str, str]) -> Config:
    """Validate ``env`` and build the configuration; an empty value counts as unset.

    :raise ConfigError: naming every bad or missing variable (all of them at once).
    """
    names = set(variable_names().values())
    given = {name: value for name, value in env.items() if name in names and value.strip()}
    try:
        data = EnvironmentSchema().load(given)
    except ma.ValidationError as error:
        raise ConfigError(_problems(error.messages_dict, given)) from None
    url = data.pop("database_url") or f"sqlite:///{Path.cwd() / 'flagsvc.db'}"
    data["secret_key"] = data["secret_key"] or DEV_SECRET_KEY  # production refused it above
    keys = data["audit_keys"]
    data["audit_keys"] = tuple(checks.audit_keys(keys)) if keys else ()
    return Config(database_url=checks.sqlalchemy_database_url(url), **data)


def database_url_from_env() -> str:
    """The SQLAlchemy database URL alone (Alembic's ``env.py`` outside the application).

    :raise ConfigError: when ``DATABASE_URL`` is malformed.
    """
    raw = os.environ.get("DATABASE_URL", "").strip()
    problem = checks.database_url_problem(raw) if raw else None
    if problem:
        raise ConfigError([f"DATABASE_URL={checks.redact(raw)}: {problem}"])
    return checks.sqlalchemy_database_url(raw or f"sqlite:///{Path.cwd() / 'flagsvc.db'}")


def _problems(messages: Mapping[str, Any], given: Mapping[str, str]) -> list[str]:
    """One line per variable, in the schema's order: ``NAME=value: reason; reason``."""
    order = list(variable_names().values())
    lines = []
    for name in sorted(messages, key=lambda n: order.index(n) if n in order else len(order)):
        reasons = messages[name]
        text = "; ".join(reasons) if isinstance(reasons, list) else str(reasons)
        shown = f"={_display(name, given[name])}" if name in given else " (not set)"
        lines.append(f"{name}{shown}: {text.rstrip('.')}")
    return lines


def _plain(value: Any) -> str:
    """A setting as ``check-config`` prints it (URLs without their password)."""
    if value is None:
        return "(not set)"
    return checks.redact(value) if isinstance(value, str) else str(value)


def _display(name: str, value: Any) -> str:
    """How a value may appear in a message or summary: never a secret or a password."""
    if name in _HIDDEN:
        return f"<hidden, {len(str(value))} characters>"
    if value is None:
        return "(not set)"
    return repr(checks.redact(value)) if isinstance(value, str) else repr(value)


@contextlib.contextmanager
def refuse_bad_config(status: int = EX_CONFIG) -> Iterator[None]:
    """Turn a ``ConfigError`` into its report on stderr and ``SystemExit(status)``.

    Used where a process starts (CLI, gunicorn's master, the WSGI module): an operator
    needs the list of problems, not a traceback.
    """
    try:
        yield
    except ConfigError as error:
        sys.stderr.write(error.report() + "\n")
        sys.stderr.flush()
        raise SystemExit(status) from None
