"""What a client tells its listeners: a new snapshot changed answers (:class:`Change`),
and its :class:`Status` moved (:class:`StatusChange`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Change", "ChangeListener", "Status", "StatusChange", "StatusListener"]


@dataclass(frozen=True, slots=True)
class Change:
    """A new snapshot was installed: which flags now answer differently, and its version.

    ``source`` is where the snapshot came from: ``service``, ``cache``, ``bootstrap``
    (or ``testing`` for the testing double).
    """

    version: int
    previous_version: int | None
    flags_changed: tuple[str, ...]
    source: str


ChangeListener = Callable[[Change], None]
"""Called after each swap that changes a flag; keep it quick, exceptions are logged."""


class Status(StrEnum):
    """How far a client's answers can be trusted (OpenFeature's provider states).

    ============  ==================================================================
    status        meaning
    ============  ==================================================================
    initializing  started; no snapshot yet and the service not heard from yet
    ready         answering from a snapshot the service confirmed current
    stale         answering from a snapshot that may be out of date: a bootstrap or
                  cache file not yet confirmed, or the service cannot be reached
    error         no snapshot, and the service cannot be reached: answering defaults
    fatal         the service refused the SDK key (401/403): nothing will get better
                  by itself; answering from what it holds, retrying every few minutes
    ============  ==================================================================
    """

    INITIALIZING = "initializing"
    READY = "ready"
    STALE = "stale"
    ERROR = "error"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The client's status moved from ``previous`` to ``status``; ``message`` says why
    when it got worse (the failure), ``None`` when it got better."""

    status: Status
    previous: Status
    message: str | None = None


StatusListener = Callable[[StatusChange], None]
"""Called on the client's background thread at every status move; exceptions are logged."""
