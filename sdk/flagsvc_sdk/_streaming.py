"""Reading the change stream: which events mean "fetch the snapshot", and how long a
stream may stay silent.

Protocol of ``GET /sdk/v1/stream``: ``retry: 1000``, then ``event: hello`` with
``data: {"environment": …, "version": …, "keepalive": <seconds>}``, then ``event:
change`` with the environment and version on every change, and ``: keep-alive``
comments every ``keepalive`` seconds (``FLAGSVC_STREAM_KEEPALIVE_SECONDS`` on the
service). A service that does not announce its interval is taken to use
:data:`KEEPALIVE_SECONDS`.

Two durations follow from the interval (:class:`Silence`): a stream heard from within
one and a half intervals is *delivering* (polling may rest); one silent for three is
dead (the read timeout) and is reconnected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ._sse import Event

__all__ = ["KEEPALIVE_SECONDS", "Signal", "Silence", "interpret"]

KEEPALIVE_SECONDS = 15.0
"""The keep-alive interval assumed until a service announces its own (its default)."""

_VERSIONED = frozenset({"hello", "change"})


@dataclass(frozen=True, slots=True)
class Silence:
    """What a keep-alive interval means for a reader."""

    keepalive: float

    @property
    def dead_after(self) -> float:
        """Silence that ends a stream: three keep-alives missed."""
        return 3 * self.keepalive

    @property
    def delivering_for(self) -> float:
        """How long after the last line a stream still counts as delivering."""
        return 1.5 * self.keepalive


def default_silence() -> Silence:
    """The silence rules before a service announced its interval."""
    return Silence(KEEPALIVE_SECONDS)


@dataclass(frozen=True, slots=True)
class Signal:
    """One event as the updater sees it.

    ``kind`` is the event name (``hello``, ``change``, or ``message`` for a bare
    ``retry:``); ``version`` is the snapshot version it announces (``None`` if it carried
    no readable one); ``retry_ms`` is the server's reconnect hint; ``keepalive`` the
    interval a ``hello`` announced.
    """

    kind: str
    version: int | None
    retry_ms: int | None
    keepalive: float | None = None

    @property
    def announces_version(self) -> bool:
        """``hello`` and ``change`` tell the current version: compare and maybe fetch."""
        return self.kind in _VERSIONED


def interpret(event: Event) -> Signal:
    """Map one event to a :class:`Signal`."""
    if event.event not in _VERSIONED:
        return Signal(event.event, None, event.retry)
    data = _object(event.data)
    version = data.get("version")
    return Signal(
        event.event,
        version if type(version) is int else None,
        event.retry,
        _interval(data.get("keepalive")) if event.event == "hello" else None,
    )


def _object(data: str) -> dict[str, object]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _interval(value: object) -> float | None:
    """A keep-alive interval in seconds, if ``value`` is a usable one."""
    if (type(value) is int or type(value) is float) and 0 < value < math.inf:
        return float(value)
    return None
