"""Configuration from environment variables (12-factor), with embedded defaults.

``DATABASE_URL``                      default: SQLite file ``flagsvc.db`` in the working folder
``REDIS_URL``                         unset: the in-process change broker and snapshot cache
``FLAGSVC_SECRET_KEY``                signs UI sessions; a fixed development value when unset
``FLAGSVC_STREAM_KEEPALIVE_SECONDS``  SSE keep-alive comment interval (default 15)
``FLAGSVC_MAX_STREAMS``               open SDK streams one process accepts (default 2000)
``FLAGSVC_HEAD_POLL_SECONDS``         how often a process with open streams re-reads the
                                      audit head, to catch changes no broker told it about
                                      (other processes without Redis, Redis outages); default 2
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

DEV_SECRET_KEY = "flagsvc-development-secret-change-me"


def database_url_from_env() -> str:
    """The database URL, defaulting to a SQLite file in the working folder."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path.cwd() / 'flagsvc.db'}"
    if url.startswith("postgres://"):  # the form Heroku-style platforms hand out
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _number(name: str, convert: Callable[[str], Any], default: Any) -> Any:
    """A positive number from the environment; a typo stops start-up with its name."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = convert(raw)
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class Config:
    """Settings the application factory needs."""

    database_url: str
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    testing: bool = False
    stream_keepalive_seconds: float = 15.0
    max_streams: int = 2000
    head_poll_seconds: float = 2.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None) -> Config:
        """Read the environment; ``overrides`` (tests) win over it."""
        values: dict[str, Any] = {
            "database_url": database_url_from_env(),
            "redis_url": os.environ.get("REDIS_URL") or None,
            "secret_key": os.environ.get("FLAGSVC_SECRET_KEY") or DEV_SECRET_KEY,
            "stream_keepalive_seconds": _number("FLAGSVC_STREAM_KEEPALIVE_SECONDS", float, 15.0),
            "max_streams": _number("FLAGSVC_MAX_STREAMS", int, 2000),
            "head_poll_seconds": _number("FLAGSVC_HEAD_POLL_SECONDS", float, 2.0),
        }
        values.update(overrides or {})
        return cls(**values)
