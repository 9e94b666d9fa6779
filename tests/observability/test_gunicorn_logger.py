"""gunicorn's logger as flagsvc runs it: no access line built unless one is asked for.

gunicorn builds its access line's fields for every request as soon as any logging
configuration is set (flagsvc sets ``logconfig_dict``), although its ``gunicorn.access``
logger writes nowhere; flagsvc writes the access line itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn import util
from gunicorn.config import Config

from flagsvc import serving
from flagsvc.observability import gunicorn_logger


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """gunicorn's setup configures the process's loggers: put them back afterwards."""
    names = ["", "gunicorn.error", "gunicorn.access"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    disabled = {n: logging.getLogger(n).disabled for n in logging.root.manager.loggerDict}
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)
    for name, was in disabled.items():
        logging.getLogger(name).disabled = was


def _logger(**settings: Any) -> gunicorn_logger.Logger:
    config = Config()
    for name, value in serving.settings({}).items():
        if name in ("logconfig_dict", "logger_class"):
            config.set(name, value)
    for name, value in settings.items():
        config.set(name, value)
    logger: gunicorn_logger.Logger = config.logger_class(config)  # as gunicorn's arbiter does
    return logger


def _request() -> tuple[Any, Any, dict[str, str]]:
    response = SimpleNamespace(status="304 Not Modified", sent=0, headers=[])
    request = SimpleNamespace(headers=[], method="GET", path="/sdk/v1/snapshot")
    return response, request, {"REQUEST_METHOD": "GET", "RAW_URI": "/sdk/v1/snapshot"}


def test_serve__gunicorn_loads_flagsvc_logger():
    assert serving.settings({})["logger_class"] == gunicorn_logger.PATH
    assert util.load_class(gunicorn_logger.PATH) is gunicorn_logger.Logger


def test_access__no_access_log__fields_never_built(logging_restored, monkeypatch):
    logger = _logger()
    assert isinstance(logger, gunicorn_logger.Logger)
    built = []
    monkeypatch.setattr(logger, "atoms", lambda *args: built.append(args) or {})
    assert not logger.access_log_enabled
    logger.access(*_request(), timedelta(milliseconds=1))
    assert built == []


def test_access__access_logfile_given__gunicorn_line_as_before(
    logging_restored, monkeypatch, tmp_path
):
    logger = _logger(accesslog=str(tmp_path / "access.log"))
    built = []
    monkeypatch.setattr(logger, "atoms", lambda *args: built.append(args) or {})
    assert logger.access_log_enabled
    logger.access(*_request(), timedelta(milliseconds=1))
    assert len(built) == 1
