"""WSGI entry point for gunicorn: ``gunicorn flagsvc.wsgi:app``.

A bad environment exits with gunicorn's "app failed to load" status (4), which makes
the master stop instead of forking replacement workers that would fail the same way;
the problems go to stderr, one per line.
"""

from __future__ import annotations

from flagsvc import create_app
from flagsvc.config import refuse_bad_config
from flagsvc.observability.logging import configure as configure_logging

APP_LOAD_ERROR = 4  # gunicorn.arbiter.Arbiter.APP_LOAD_ERROR

with refuse_bad_config(status=APP_LOAD_ERROR):
    app = create_app()
_config = app.extensions["flagsvc"].config
configure_logging(_config.log_format, _config.log_level, default_format="json")
