"""flagsvc: staged-release feature flags.

``create_app`` is the composition root: the one place that wires storage, the clock
and the HTTP blueprints together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from flagsvc.config import Config
from flagsvc.state import AppState
from flagsvc.state import Clock
from flagsvc.state import system_clock
from flagsvc.storage.db import Database

__all__ = ["create_app"]


def create_app(overrides: Mapping[str, Any] | None = None, *, clock: Clock = system_clock) -> Flask:
    """Build the service. ``overrides`` (tests) win over the environment."""
    from flagsvc.api import init_api  # imported late: the API needs an app to bind to

    config = Config.from_env(overrides)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["flagsvc"] = AppState(
        config=config, db=Database(config.database_url), clock=clock
    )
    init_api(app)
    return app
