"""flagsvc: staged-release feature flags.

``create_app`` is the composition root: the one place that wires storage, the clock,
change delivery (broker, snapshot cache) and the HTTP blueprints together.

Imports happen inside the functions on purpose: gunicorn's master imports
``flagsvc.serving`` (and so this package) before it forks, and gevent workers must
import psycopg, redis and SQLAlchemy only after they monkey-patch the standard
library (psycopg picks its wait strategy at import time).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from flask import Flask

    from flagsvc.config import Config
    from flagsvc.delivery.broker import ChangeBroker
    from flagsvc.delivery.cache import SnapshotCache
    from flagsvc.services.auth_failures import AuthFailureLimiter
    from flagsvc.state import AppState
    from flagsvc.state import Clock
    from flagsvc.storage.db import Database
    from flagsvc.storage.db import Engines

__all__ = ["create_app", "create_state"]


def create_app(
    overrides: Mapping[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    engines: Engines | None = None,
) -> Flask:
    """Build the service. ``overrides`` (tests) win over the environment; ``engines``
    (tests) are open for the configured database already (``create_state``)."""
    from flask import Flask

    from flagsvc.api import init_api  # imported late: the API needs an app to bind to
    from flagsvc.config import Config
    from flagsvc.ui import init_ui

    config = Config.from_env(overrides)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=config.secret_key, TESTING=config.testing)
    app.config.update(SESSION_COOKIE_SECURE=config.production)  # production is behind HTTPS
    app.config.update(MAX_CONTENT_LENGTH=config.max_body_bytes, JSON_SORT_KEYS=False)
    app.extensions["flagsvc"] = create_state(config, clock=clock, engines=engines)
    init_api(app)
    init_ui(app)
    _trust_proxies(app, config.proxy_hops)
    return app


def create_state(
    config: Config, *, clock: Clock | None = None, engines: Engines | None = None
) -> AppState:
    """The runtime state ``create_app`` binds to its app: storage, change delivery hung
    on its commit hook, caches and limits.

    Separate so that the tests can build the app (its routes and OpenAPI document, most
    of ``create_app``'s cost) once and give each test a fresh state on a fresh database.
    ``engines``, open for ``config.database_url`` already, let them keep the engines
    (their compiled statements) from one test to the next: the state's own hooks hang
    on its ``Database``, never on the engines. Without them the state opens its own.
    """
    from flagsvc.state import AppState
    from flagsvc.state import system_clock

    database, broker, cache = _storage_and_delivery(config, engines)
    _seal_audit(database, config)
    return AppState(
        config, database, broker, clock or system_clock, cache, auth_failures=_limiter(config)
    )


def _seal_audit(database: Database, config: Config) -> None:
    """Every write session seals its audit events with ``FLAGSVC_AUDIT_KEY`` (if set)."""
    from flagsvc.domain.audit_chain import AuditKeys
    from flagsvc.services import audit

    database.tag_writes(audit.sealing(AuditKeys.from_secrets(config.audit_keys)))


def _trust_proxies(app: Flask, hops: int) -> None:
    """Take the client address and scheme from ``hops`` load balancers' X-Forwarded-* headers.

    Behind a load balancer every request comes from its address; without this, per-client
    limits would see one client and redirects would say ``http`` for HTTPS visitors.
    Only as many hops as are really there: a client can forge the rest.
    """
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _limiter(config: Config) -> AuthFailureLimiter:
    """The auth-failure limit: counted in Redis with ``REDIS_URL``, else in this process."""
    from flagsvc.services.auth_failures import AuthFailureLimiter

    return AuthFailureLimiter(
        config.auth_failure_limit, config.auth_failure_window_seconds, config.redis_url
    )


def _storage_and_delivery(
    config: Config, engines: Engines | None
) -> tuple[Database, ChangeBroker, SnapshotCache]:
    """The database, and change delivery hung on its commit hook (``flagsvc.delivery``)."""
    from flagsvc.delivery.wiring import start_delivery
    from flagsvc.storage.db import Database

    database = Database(
        config.database_url,
        config.db_pool_size,
        config.db_pool_timeout_seconds,
        engines=engines,
    )
    delivery = start_delivery(database, config.redis_url, config.head_poll_seconds)
    return database, delivery.broker, delivery.cache
