"""Run Alembic migrations from code (``flagsvc init``, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig


def migrations_folder() -> Path:
    """Where the Alembic scripts are: ``FLAGSVC_MIGRATIONS``, the checkout, or ``./migrations``.

    A source checkout (``pip install -e``) keeps them beside the package; an installed
    wheel (the Docker image) finds them in the working folder.
    """
    candidates = [
        Path(os.environ.get("FLAGSVC_MIGRATIONS", "")),
        Path(__file__).resolve().parents[2] / "migrations",
        Path.cwd() / "migrations",
    ]
    return next((p for p in candidates if (p / "env.py").is_file()), candidates[1])


def alembic_config(database_url: str) -> AlembicConfig:
    """An Alembic config pointing at our migrations and ``database_url``."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_folder()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate ``database_url`` up to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate ``database_url`` down to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)
