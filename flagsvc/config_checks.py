"""Checks of single configuration values: each returns what is wrong, or None.

Standard library only, on purpose: gunicorn's master runs them before forking gevent
workers, so SQLAlchemy, psycopg and redis (which would parse these URLs too) must not be
imported yet. The messages name the expected form, because an operator reads them
at 3 a.m. without the source.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult
from urllib.parse import urlsplit

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_DATABASE_FORMS = "postgresql://user:password@host:5432/name or sqlite:///path/to/file.db"
_REDIS_FORMS = "redis://host:6379/0, rediss://host:6380/0 (TLS) or unix:///path/redis.sock"


def database_url_problem(url: str) -> str | None:
    """Why ``url`` is no PostgreSQL or SQLite URL flagsvc can use, or None."""
    parts = _split(url)
    if parts is None:
        return f"is not a URL; expected {_DATABASE_FORMS}"
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        return _sqlite_problem(url)
    if scheme not in POSTGRES_SCHEMES:
        return f"scheme {scheme!r} is not supported; expected {_DATABASE_FORMS}"
    return _port_problem(parts) or (
        None if parts.path.strip("/") else "names no database; expected …/name at the end"
    )


def _sqlite_problem(url: str) -> str | None:
    """SQLite fails late and obscurely when the file's folder is missing: say so now."""
    path = url.split("://", 1)[1].removeprefix("/").split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    folder = Path(path).parent
    return None if folder.is_dir() else f"folder {str(folder)!r} of the SQLite file does not exist"


def redis_url_problem(url: str) -> str | None:
    """Why ``url`` is no Redis URL redis-py accepts, or None."""
    parts = _split(url)
    if parts is None or parts.scheme.lower() not in REDIS_SCHEMES:
        scheme = f"scheme {parts.scheme!r}" if parts else "not a URL"
        return f"{scheme} is not supported; expected {_REDIS_FORMS}"
    if parts.scheme.lower() == "unix":
        return None if parts.path else "names no socket path; expected unix:///path/redis.sock"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"database {database!r} is not a number; expected …:6379/0"
    return _port_problem(parts) or (None if parts.hostname else "names no host")


def bind_problem(bind: str) -> str | None:
    """Why ``bind`` is no gunicorn address (``host:port``, ``[::1]:port``, ``unix:path``)."""
    if bind.startswith("unix:"):
        return None if bind.removeprefix("unix:") else "names no socket path"
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "expected host:port, e.g. 0.0.0.0:8000, or unix:/path/to.sock"
    return None


def migrations_problem(folder: str) -> str | None:
    """Why ``folder`` holds no Alembic migrations, or None."""
    if (Path(folder) / "env.py").is_file():
        return None
    return "holds no Alembic env.py; point it at the repository's migrations folder"


def log_format_problem(name: str) -> str | None:
    """Why ``name`` is no log format, or None."""
    return None if name.lower() in LOG_FORMATS else f"must be one of: {', '.join(LOG_FORMATS)}"


def log_level_problem(name: str) -> str | None:
    """Why ``name`` is no standard logging level, or None."""
    return None if name.upper() in LOG_LEVELS else f"must be one of: {', '.join(LOG_LEVELS)}"


def sqlalchemy_database_url(url: str) -> str:
    """``url`` with the driver SQLAlchemy should use: psycopg 3 for PostgreSQL."""
    scheme, rest = url.split("://", 1)
    if scheme.lower() in ("postgres", "postgresql"):  # postgres:// is what PaaSes hand out
        return f"postgresql+psycopg://{rest}"
    return url


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe for logs and error messages)."""
    parts = _split(url)
    if parts is None or parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _split(url: str) -> SplitResult | None:
    """The URL's parts, or None when it has no ``scheme://``."""
    if "://" not in url:
        return None
    try:
        return urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None


def _port_problem(parts: SplitResult) -> str | None:
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        return f"port in {parts.netloc.rsplit('@', 1)[-1]!r} is not a number from 0 to 65535"
    return None


MIN_AUDIT_KEY_LENGTH = 32


def audit_keys(value: str) -> list[str]:
    """``FLAGSVC_AUDIT_KEY`` as its keys: comma-separated, the current one first."""
    return [key.strip() for key in value.split(",")]


def audit_key_problem(value: str) -> str | None:
    """Why ``value`` is no list of audit keys, or None (never repeats a key)."""
    keys = audit_keys(value)
    for position, key in enumerate(keys, start=1):
        if len(key) < MIN_AUDIT_KEY_LENGTH:
            return (
                f"key {position} has {len(key)} characters, at least {MIN_AUDIT_KEY_LENGTH} "
                "are needed; make one: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
    if len(set(keys)) != len(keys):
        return "lists the same key twice"
    return None
