"""HTTP to the service's SDK API (``/sdk/v1/...``), on one shared ``httpx.Client``.

:class:`Transport` is the seam for tests and unusual networks: anything with httpx's
``handle_request(request) -> response`` works, ``httpx.MockTransport(handler)`` included,
so the whole client (stream included) runs offline in tests. Failures here raise
:class:`~flagsvc_sdk.errors.FetchError` or ``httpx.HTTPError``; the updater and the
client catch both, so nothing from this module reaches product code.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from typing import Protocol
from typing import runtime_checkable

import httpx

from ._sse import Event
from ._sse import events
from ._version import __version__
from .engine.wire import SPEC_VERSION
from .errors import FetchError

__all__ = [
    "DELTA_HEADER",
    "HASH_HEADER",
    "USER_AGENT",
    "AsyncSdkApi",
    "Fetched",
    "SdkApi",
    "Transport",
    "key_hint",
    "refusal",
]

USER_AGENT = f"flagsvc-python-sdk/{__version__}"
log = logging.getLogger("flagsvc_sdk")
_JSON = {"Content-Type": "application/json"}


@runtime_checkable
class Transport(Protocol):
    """What the SDK needs from a transport: httpx's ``BaseTransport.handle_request``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return the response (its body may still be streaming)."""
        ...


class _TransportAdapter(httpx.BaseTransport):
    """Let httpx drive any :class:`Transport`, even one that does not subclass its base."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


DELTA_HEADER = "Flagsvc-Delta"
"""Sent as ``1`` on every request: this SDK applies patch answers (``?since=``)."""
HASH_HEADER = "Flagsvc-Content-Hash"
"""The service's hash of the content a snapshot or patch answer leaves the SDK holding."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A snapshot download: ``raw`` is ``None`` when the service said 304 Not Modified.

    ``raw`` is a full snapshot or, when a patch was asked for, maybe a patch answer.
    """

    raw: bytes | None
    etag: str | None
    content_hash: str | None = None


class SdkApi:
    """The SDK endpoints of one service, authenticated with one SDK key."""

    def __init__(
        self, url: str, sdk_key: str, timeout: float, transport: Transport | None = None
    ) -> None:
        if transport is not None and not isinstance(transport, httpx.BaseTransport):
            transport = _TransportAdapter(transport)
        self.timeout = timeout
        self.key_hint = key_hint(sdk_key)
        self._stream_response: httpx.Response | None = None
        self._http = httpx.Client(transport=transport, **_options(url, sdk_key, timeout))

    def fetch_snapshot(self, etag: str | None, since: tuple[int, str] | None = None) -> Fetched:
        """``GET /sdk/v1/snapshot`` with ``If-None-Match`` when an ETag is known, and
        ``?since=<version>&base=<content hash>`` when ``since`` is given: the service then
        answers a patch from that version, or the full snapshot when it has none.

        :raise FetchError: on any status but 200 and 304.
        :raise httpx.HTTPError: when the service cannot be reached.
        """
        headers = {"If-None-Match": etag} if etag else {}
        params = {"since": str(since[0]), "base": since[1]} if since is not None else None
        response = self._http.get("/sdk/v1/snapshot", headers=headers, params=params)
        if response.status_code == 304:
            return Fetched(None, etag)
        if response.status_code != 200:
            raise refusal("GET /sdk/v1/snapshot", response)
        return Fetched(
            response.content, response.headers.get("ETag"), response.headers.get(HASH_HEADER)
        )

    def post(self, path: str, body: object, timeout: float | None = None) -> bool:
        """POST JSON; ``True`` on a 2xx answer, else ``False`` with a warning logged.

        ``timeout`` replaces the client's HTTP timeout for this request.
        """
        try:
            wait = self.timeout if timeout is None else timeout
            response = self._http.post(path, content=_json(body), headers=_JSON, timeout=wait)
        except (httpx.HTTPError, TypeError, ValueError) as exc:
            log.warning("flagsvc: POST %s failed: %s", path, exc)
            return False
        return _accepted(path, response)

    @contextmanager
    def stream(self, read_timeout: float, on_line: Callable[[], None]) -> Iterator[Iterator[Event]]:
        """Open ``GET /sdk/v1/stream`` and yield its events.

        ``read_timeout`` bounds every read, the wait for the response included, so a
        stream that says nothing (not even a keep-alive) for that long raises
        ``httpx.ReadTimeout``; ``on_line`` is called for every line received, keep-alive
        comments included.

        :raise FetchError: if the service answers anything but 200.
        """
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        with self._http.stream(
            "GET", "/sdk/v1/stream", headers=headers, timeout=timeout
        ) as response:
            self._stream_response = response
            try:
                if response.status_code != 200:
                    response.read()
                    raise refusal("GET /sdk/v1/stream", response)
                yield events(response.iter_bytes(), on_line)
            finally:
                self._stream_response = None

    def abort_stream(self) -> None:
        """Unblock a thread reading the stream, from another thread (used by ``close``).

        Closing a socket does not wake a ``recv`` blocked on it in another thread on
        Linux; shutting it down does, so the updater stops at once instead of at the
        next keep-alive.
        """
        response = self._stream_response
        if response is None:
            return
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with suppress(OSError, AttributeError):
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close pooled connections (an open stream's included)."""
        self._http.close()


class AsyncSdkApi:
    """The SDK endpoints asyncio code awaits (enroll, leave), on ``httpx.AsyncClient``.

    ``transport`` is used when it is an ``httpx.AsyncBaseTransport`` (``MockTransport``
    is both); otherwise the default one.
    """

    def __init__(self, url: str, sdk_key: str, timeout: float, transport: object = None) -> None:
        async_transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
        self._http = httpx.AsyncClient(transport=async_transport, **_options(url, sdk_key, timeout))

    async def post(self, path: str, body: object) -> bool:
        """POST JSON; ``True`` on a 2xx answer, else ``False`` with a warning logged."""
        try:
            response = await self._http.post(path, content=_json(body), headers=_JSON)
        except (httpx.HTTPError, TypeError, ValueError) as exc:
            log.warning("flagsvc: POST %s failed: %s", path, exc)
            return False
        return _accepted(path, response)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()


def _options(url: str, sdk_key: str, timeout: float) -> dict[str, Any]:
    """What both HTTP clients are built with: the service, the key, the User-Agent."""
    return {
        "base_url": url,
        "headers": {
            "Authorization": f"Bearer {sdk_key}",
            "User-Agent": USER_AGENT,
            "Flagsvc-Spec": str(SPEC_VERSION),  # the service serves spec 1 to SDKs without it
            DELTA_HEADER: "1",  # without it the service never answers a patch
        },
        "timeout": timeout,
    }


def _json(body: object) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _accepted(path: str, response: httpx.Response) -> bool:
    if response.is_success:
        return True
    log.warning("flagsvc: POST %s answered %s: %s", path, response.status_code, response.text)
    return False


def refusal(what: str, response: httpx.Response) -> FetchError:
    """The error for a non-success answer: its status and ``Retry-After`` (delta-seconds)."""
    error = FetchError(f"{what} answered {response.status_code}", status=response.status_code)
    with suppress(ValueError):
        error.retry_after = max(0.0, float(response.headers.get("Retry-After", "")))
    return error


def key_hint(sdk_key: str) -> str:
    """Enough of an SDK key to tell which one it is in a log line, never the secret:
    at most its first 16 characters and never more than half of it."""
    return sdk_key[: min(16, len(sdk_key) // 2)] + "…"
