"""Configuration from environment variables (12-factor), with embedded defaults.

``DATABASE_URL``        default: SQLite file ``flagsvc.db`` in the working folder
``REDIS_URL``           unset: the in-process change broker
``FLAGSVC_SECRET_KEY``  signs UI sessions; a fixed development value when unset
"""

from __future__ import annotations

import os
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


@dataclass(frozen=True, slots=True)
class Config:
    """Settings the application factory needs."""

    database_url: str
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None) -> Config:
        """Read the environment; ``overrides`` (tests) win over it."""
        values: dict[str, Any] = {
            "database_url": database_url_from_env(),
            "redis_url": os.environ.get("REDIS_URL") or None,
            "secret_key": os.environ.get("FLAGSVC_SECRET_KEY") or DEV_SECRET_KEY,
        }
        values.update(overrides or {})
        return cls(**values)
