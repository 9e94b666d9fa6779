"""gunicorn's own refusals (414, 431, 400 …) in flagsvc's JSON error shape.

gunicorn answers a request line longer than ``limit_request_line`` (414) or a header
past ``limit_request_field_size`` / ``limit_request_fields`` (431) itself, before the
application sees the request, with a small HTML page. Clients of a JSON API parse
``{"code", "status", "message"}`` for every error; ``install`` (gunicorn's
``post_worker_init`` hook, so in each worker) replaces the function gunicorn writes those
pages with by one writing that shape. It keeps gunicorn's limits: raising them so that
Flask saw the request first would let bigger requests in.
"""

from __future__ import annotations

import json
from typing import Any


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, answering JSON instead of HTML."""
    from gunicorn import util  # gunicorn is running: importing it here costs nothing

    body = json.dumps({"code": status_int, "status": reason, "message": mesg or reason})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1", "replace"))


def install(_worker: Any = None) -> None:
    """Make this worker's gunicorn write errors as JSON (a ``post_worker_init`` hook)."""
    from gunicorn import util

    util.write_error = write_json_error
