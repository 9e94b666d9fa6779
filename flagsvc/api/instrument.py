"""Request metrics, the access log line, and request context for every log line.

Each response counts in ``flagsvc_http_requests_total`` and, unless it is an SDK event
stream, times in ``flagsvc_http_request_duration_seconds``: a stream answers at once
and then stays open for hours, so it counts when it opens and would only distort the
latencies. Both use the Flask URL rule (``/api/v1/flags/<string:flag_key>``) as the
``endpoint`` label, never the raw path, so label values stay few however many flags
exist. The duration ends when the response is ready to send; a streamed body (audit
exports) is not included.

The access line (logger ``flagsvc.access``) replaces gunicorn's: method, path (without
the query string), status, duration, with the request id and actor every line written
during a request carries. Probes, scrapes and SDK polls answered 304 log at DEBUG. No
header is ever logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import has_request_context
from flask import request

from flagsvc.config import Config
from flagsvc.observability import metrics
from flagsvc.observability.logging import add_context_provider
from flagsvc.web.context import request_id

access_log = logging.getLogger("flagsvc.access")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"
"""The ``endpoint`` label of a request no URL rule matched (a 404 or 405)."""
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNCHANGED_POLL = "/sdk/v1/snapshot"
"""Its 304s ("nothing changed") log at DEBUG too: counted in the metrics, but a line for
each would be most of the log (1,000 SDKs polling every 15 s: 67 lines a second)."""
STREAM_MIMETYPE = "text/event-stream"
_ACCESS_LOG = "flagsvc.access_log"


def init_app(app: Flask, config: Config) -> None:
    """Time and count every request to ``app``; log one access line per request
    unless ``FLAGSVC_ACCESS_LOG=0``."""
    app.before_request(_start_clock)
    app.after_request(_observe)
    app.extensions[_ACCESS_LOG] = config.access_log
    add_context_provider(request_context)
    metrics.SDK_STREAMS_LIMIT.set(config.max_streams)


def request_context() -> dict[str, Any]:
    """``request_id`` and ``actor`` (once authenticated) of the request being served."""
    if not has_request_context():
        return {}
    actor = g.get("actor")
    fields: dict[str, Any] = {"request_id": request_id()}
    if actor is not None:
        fields["actor"] = actor.name
    return fields


def _start_clock() -> None:
    g.request_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if started is not None else 0.0
    method = request.method if request.method in METHODS else "OTHER"
    endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    metrics.HTTP_REQUESTS.labels(method, endpoint, str(response.status_code)).inc()
    if response.mimetype != STREAM_MIMETYPE:
        metrics.HTTP_REQUEST_DURATION.labels(method, endpoint).observe(elapsed)
    _log_access(response.status_code, elapsed)
    return response


def _log_access(status: int, elapsed: float) -> None:
    quiet = request.path in QUIET_PATHS or (status == 304 and request.path == UNCHANGED_POLL)
    level = logging.DEBUG if quiet else logging.INFO
    if not (current_app.extensions[_ACCESS_LOG] and access_log.isEnabledFor(level)):
        return
    fields = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
    }
    access_log.log(level, "%s %s %s", request.method, request.path, status, extra=fields)
