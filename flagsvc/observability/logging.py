"""Log set-up: one JSON object per line on stderr (or plain text), with request context.

``FLAGSVC_LOG_FORMAT`` is ``json`` or ``text``; the gunicorn entry point
(``flagsvc.wsgi``) defaults to ``json``, everything else (tests, the CLI) to text.
``FLAGSVC_LOG_LEVEL`` is a level name (default ``INFO``).

A JSON line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
any ``extra`` fields, and ``request_id`` / ``actor`` when written while a request is
being served: the HTTP layer registers a context provider (this package knows no
Flask). Secrets never reach a line: fields named like credentials are replaced and
anything shaped like a bearer token, admin token or SDK key is masked in the message.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

FORMAT_ENV = "FLAGSVC_LOG_FORMAT"
LEVEL_ENV = "FLAGSVC_LOG_LEVEL"
FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED = "[redacted]"
_HANDLER_NAME = "flagsvc"

ContextProvider = Callable[[], Mapping[str, Any]]
"""Returns the fields of the current request (empty outside one)."""

_providers: list[ContextProvider] = []
# "Bearer <anything>", and our own token shapes (fst_ admin tokens, fss_ SDK keys) wherever
# they appear; kept in step with flagsvc/services/credentials.py by test_logging.py.
_SECRET_TEXT = re.compile(r"(?i)(bearer\s+)\S+|\bfs[st]_[A-Za-z0-9_-]{8,}")
_SECRET_FIELD = re.compile(r"(?i)authorization|token|secret|password|sdk_key|cookie")


def add_context_provider(provider: ContextProvider) -> None:
    """Add fields (e.g. ``request_id``, ``actor``) to every line written in a request."""
    if provider not in _providers:
        _providers.append(provider)


def redact(text: str) -> str:
    """``text`` with anything shaped like a credential masked."""
    return _SECRET_TEXT.sub(lambda m: (m.group(1) or "") + REDACTED, text)


class ContextFilter(logging.Filter):
    """Adds the request context and masks secrets; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for provider in _providers:
            for name, value in provider().items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        for name in list(vars(record)):
            if _SECRET_FIELD.search(name):
                setattr(record, name, REDACTED)
        try:
            message = record.getMessage()
        except Exception:  # a bad format call: the formatter reports it (handleError)
            return True
        record.msg, record.args = redact(message), None
        return True


def json_formatter() -> logging.Formatter:
    """``timestamp``, ``level``, ``logger``, ``message``, then the extra fields."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


def gunicorn_logconfig(log_format: str | None, level: str | None) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its own lines (start, worker boot and exit) as JSON too.

    Empty (gunicorn's text defaults) for the text format. gunicorn's access logger is
    silenced either way: the application writes the access line, with request id and
    actor. The handler is named like ``configure``'s, which replaces it in the workers.
    """
    if (log_format or "json").lower() != "json":
        return {}
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "json",
        "filters": ["context"],
    }
    return {
        "root": {"level": _level(level or "INFO"), "handlers": [_HANDLER_NAME]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
        "handlers": {_HANDLER_NAME: handler},
        "formatters": {"json": {"()": f"{__name__}.json_formatter"}},
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
    }


def configure(
    log_format: str | None = None,
    level: str | None = None,
    *,
    default_format: str = "text",
    stream: TextIO | None = None,
) -> None:
    """Send the root logger's lines to ``stream`` (stderr) in the chosen format.

    Arguments win over ``FLAGSVC_LOG_FORMAT`` / ``FLAGSVC_LOG_LEVEL``; calling it again
    replaces the handler it installed before (never anyone else's).

    :raise ValueError: naming the variable, for an unknown format or level.
    """
    chosen = (log_format or os.environ.get(FORMAT_ENV) or default_format).lower()
    if chosen not in FORMATS:
        raise ValueError(f"{FORMAT_ENV} must be one of {', '.join(FORMATS)}, got {chosen!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_level(level or os.environ.get(LEVEL_ENV) or "INFO"))


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    if not isinstance(value, int):
        raise ValueError(f"{LEVEL_ENV} must be a level name such as INFO, got {name!r}")
    return value
