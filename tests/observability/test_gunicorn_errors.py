"""gunicorn's own refusals come back in the API's JSON error shape (issue 10 §4).

A request line past ``limit_request_line`` (414) or a header past
``limit_request_field_size`` (431) never reaches Flask: gunicorn answers it. Sent over
a raw socket to a real ``flagsvc serve``, so the bytes are exactly what gunicorn writes.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.live import LiveService


@pytest.fixture(scope="module")
def service(postgres_migrated) -> Iterator[LiveService]:
    with LiveService(postgres_migrated, None) as live:
        live.cli("init", timeout=120)
        live.start(timeout=120)
        yield live


def _raw(service: LiveService, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(service.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(request)
        with contextlib.suppress(OSError):  # it may have answered and closed already
            conn.shutdown(socket.SHUT_WR)  # all sent: gunicorn may answer before reading it all
        answer = b""
        with contextlib.suppress(ConnectionResetError):  # it closes with bytes unread
            while chunk := conn.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/v1/flags?q=" + b"a" * 8200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ],
    ids=["request-line", "header-field"],
)
def test_gunicorn_refusal__json_error_shape(service, request_bytes, status):
    code, headers, body = _raw(service, request_bytes)
    assert code == status
    assert headers["content-type"] == "application/json"
    parsed = json.loads(body)
    assert parsed["code"] == status and parsed["status"] and parsed["message"]
