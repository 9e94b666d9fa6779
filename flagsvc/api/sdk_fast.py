"""``GET /sdk/v1/snapshot`` answered in front of Flask when everything is in memory.

An SDK poll that changes nothing is the most frequent request flagsvc serves; through
Flask, flask-smorest's decorators and the request hooks it cost several times the work
of the answer itself. This WSGI layer answers it directly when all it needs is known
without the database or a decision: the SDK key is in the key cache and fresh, its
last-use note is not due, the audit head is confirmed (``HeadTracker``) and the cached
snapshot covers it. Anything else (first request of a key, an expired key cache, a
rebuild due, a bad header, a client reading spec 1, any other path or method) goes to
Flask, which is the
reference behaviour: this layer only short-cuts answers Flask would give the same way
(status, body, ``ETag``, ``Cache-Control``, ``Vary``, ``Content-Encoding``,
``X-Request-ID``), and counts and logs them the same way (``flagsvc_http_requests_total``,
the duration histogram, the access line with request id and actor).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from flagsvc_sdk.engine.wire import SPEC_VERSION
from werkzeug.http import parse_etags

from flagsvc.api.instrument import access_log
from flagsvc.api.sdk import HASH_HEADER
from flagsvc.api.sdk import SPEC1_ONLY_AGENT
from flagsvc.api.sdk import VARY
from flagsvc.api.sdk import accepts_gzip
from flagsvc.observability import metrics
from flagsvc.services import credentials
from flagsvc.state import AppState
from flagsvc.web.context import REQUEST_ID_HEADER
from flagsvc.web.context import valid_request_id

PATH = "/sdk/v1/snapshot"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_STATUS = {200: "200 OK", 304: "304 NOT MODIFIED"}
_CURRENT = str(SPEC_VERSION)


def _current_spec(environ: dict[str, Any]) -> bool:
    """Whether the caller reads the current spec, as ``sdk._wanted_spec`` decides it."""
    asked: str | None = environ.get("HTTP_FLAGSVC_SPEC")
    if asked is None:
        agent: str = environ.get("HTTP_USER_AGENT", "")
        return not agent.startswith(SPEC1_ONLY_AGENT)
    return asked.strip() == _CURRENT


class SnapshotFastPath:
    """WSGI middleware: answers SDK snapshot polls from memory, else calls ``app``."""

    def __init__(self, app: WsgiApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self.access_log = state.config.access_log
        self.counted = {
            status: metrics.HTTP_REQUESTS.labels("GET", PATH, str(status)) for status in _STATUS
        }
        self.timed = metrics.HTTP_REQUEST_DURATION.labels("GET", PATH)
        self.answered = 0
        """Polls answered here (tests and benchmarks read it)."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        started = time.perf_counter()
        answer = self._answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body, actor = answer
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if valid_request_id(given) else os.urandom(16).hex()
        headers.append((REQUEST_ID_HEADER, rid))
        start_response(_STATUS[status], headers)
        self.answered += 1
        elapsed = time.perf_counter() - started
        self.counted[status].inc()
        self.timed.observe(elapsed)
        level = logging.DEBUG if status == 304 else logging.INFO  # as instrument's
        if self.access_log and access_log.isEnabledFor(level):
            fields = {
                "method": "GET",
                "path": PATH,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "request_id": rid,
                "actor": actor,
            }
            access_log.log(level, "GET %s %s", PATH, status, extra=fields)
        return [body]

    def _answer(
        self, environ: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], bytes, str] | None:
        if not _current_spec(environ):
            return None  # spec 1 readers (and 406s) are Flask's
        scheme, _, secret = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith(credentials.SDK_KEY_PREFIX):
            return None
        state = self.state
        actor = state.sdk_keys.fresh(secret)
        if actor is None or actor.environment is None or actor.sdk_key_id is None:
            return None
        if state.sdk_key_use.pending(actor.sdk_key_id):
            return None  # Flask writes the key's last use
        snapshot = state.snapshots.ready(actor.environment)
        if snapshot is None:
            return None
        encoded = snapshot.encoded
        headers = [
            ("ETag", f'"{encoded.etag}"'),
            ("Cache-Control", "no-cache"),
            ("Vary", VARY),
        ]
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        query = environ.get("QUERY_STRING")
        if query and not _plain_query(query):
            return None  # Flask's: maybe a 422 naming since or base
        if if_none_match and (
            if_none_match == headers[0][1] or encoded.etag in parse_etags(if_none_match)
        ):  # the SDK sends back exactly the ETag it got: no parsing needed then
            return 304, headers, b"", actor.name
        if query and environ.get("HTTP_FLAGSVC_DELTA"):
            return None  # maybe a patch: Flask's
        headers.append((HASH_HEADER, encoded.content_hash))
        if accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
            body = snapshot.gzipped()
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = encoded.body
        headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(body))))
        return 200, headers, body, actor.name


_SINCE = re.compile(r"[0-9]{1,18}")


def _plain_query(query: str) -> bool:
    """Whether ``since`` and ``base`` (if there) are ones Flask accepts as they are.

    Anything else (a malformed or repeated value) goes to Flask, which answers the 422:
    a 304 from here must be one Flask would give too.
    """
    fields = parse_qs(query, keep_blank_values=True)
    since, base = fields.get("since", ["0"]), fields.get("base", ["x"])
    return (
        len(since) == 1
        and len(base) == 1
        and _SINCE.fullmatch(since[0]) is not None
        and 1 <= len(base[0]) <= 128
    )
