"""Reading the change stream: which Server-Sent Events mean "fetch the snapshot".

Protocol of ``GET /sdk/v1/stream``: ``retry: 1000``, then ``event: hello`` with
``data: {"environment": …, "version": …}``, then ``event: change`` with the same shape on
every change, and ``: keep-alive`` comments every :data:`KEEPALIVE_SECONDS`. The SSE
framing itself is parsed by ``httpx-sse``; comments never surface as events, but they do
reset the read timeout, which is how a silent stream is detected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from httpx_sse import ServerSentEvent

__all__ = ["KEEPALIVE_SECONDS", "SILENCE_TIMEOUT", "Signal", "interpret"]

KEEPALIVE_SECONDS = 15.0
"""How often the service sends a keep-alive comment."""
SILENCE_TIMEOUT = 3 * KEEPALIVE_SECONDS
"""A stream silent for longer than this is dead (three keep-alives missed)."""

_VERSIONED = frozenset({"hello", "change"})


@dataclass(frozen=True, slots=True)
class Signal:
    """One event as the updater sees it.

    ``kind`` is the event name (``hello``, ``change``, or ``message`` for a bare
    ``retry:``); ``version`` is the snapshot version it announces (``None`` if it carried
    no readable one); ``retry_ms`` is the server's reconnect hint, if it sent one.
    """

    kind: str
    version: int | None
    retry_ms: int | None

    @property
    def announces_version(self) -> bool:
        """``hello`` and ``change`` tell the current version: compare and maybe fetch."""
        return self.kind in _VERSIONED


def interpret(event: ServerSentEvent) -> Signal:
    """Map one event to a :class:`Signal`."""
    version = _version(event.data) if event.event in _VERSIONED else None
    return Signal(event.event, version, event.retry)


def _version(data: str) -> int | None:
    try:
        version = json.loads(data).get("version")
    except (ValueError, AttributeError):
        return None
    return version if type(version) is int else None
