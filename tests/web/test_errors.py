"""Database failures answer 503 with a reason and Retry-After, never 500.

The end-to-end version (PostgreSQL really stopped under load) is in
``tests/faults/test_database_outage.py``; these run anywhere, fast.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from flagsvc import create_app
from tests.live import free_port

UNREACHABLE = "the database is unreachable; retry"


class _DriverError(Exception):
    """Stands in for a psycopg error: carries a SQLSTATE like the real ones do."""

    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver says no")
        self.sqlstate = sqlstate


def _failing_app(error: Exception) -> Flask:
    app = create_app({"database_url": "sqlite://", "testing": True, "redis_url": None})

    @app.get("/boom")
    def boom() -> Any:
        raise error

    return app


def test_database_not_listening__request_answers_503_with_retry_after() -> None:
    # Given a service whose PostgreSQL is not listening
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone"
    app = create_app({"database_url": url, "testing": True, "redis_url": None})
    # When a write arrives (authentication is the first thing to need the database)
    response = app.test_client().post(
        "/api/v1/cohorts", json={"key": "c", "name": "c"}, headers={"Authorization": "Bearer x"}
    )
    # Then
    assert response.status_code == 503
    assert response.json is not None and response.json["message"] == UNREACHABLE
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OperationalError("SELECT 1", {}, _DriverError(None)), UNREACHABLE),
        (OperationalError("SELECT 1", {}, _DriverError("57P01")), UNREACHABLE),
        (OperationalError("SELECT 1", {}, _DriverError("08006")), UNREACHABLE),
        (InterfaceError("SELECT 1", {}, _DriverError(None)), UNREACHABLE),
        (PoolTimeoutError("QueuePool limit reached"), "every database connection is in use; retry"),
        (
            OperationalError("UPDATE t", {}, _DriverError("40P01")),
            "the database could not finish the request (SQLSTATE 40P01); retry",
        ),
    ],
)
def test_database_error__503_naming_the_reason_without_driver_details(
    error: Exception, message: str
) -> None:
    response = _failing_app(error).test_client().get("/boom")
    assert response.status_code == 503
    assert response.json == {"code": 503, "status": "Service Unavailable", "message": message}
    assert response.headers["Retry-After"] == "5"
