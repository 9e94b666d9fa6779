"""What :class:`~flagsvc_sdk.Client` and the testing double share: listeners and ``with``.

Two kinds: change listeners (a snapshot changed answers) and status listeners (the
client's :class:`~flagsvc_sdk.Status` moved).

Listeners are held in a list replaced on every change (copy-on-write), so the thread
that notifies reads it without a lock. A listener that raises is logged and the others
are still called: product code's callback must never stop the client.
"""

from __future__ import annotations

import logging
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Self
from typing import TypeVar

from .events import Change
from .events import ChangeListener
from .events import StatusChange
from .events import StatusListener

__all__ = ["Listeners"]

log = logging.getLogger("flagsvc_sdk")
T = TypeVar("T")


class Listeners(ABC):
    """Change and status listeners, their notification, and ``with`` (closes on exit)."""

    _listeners: list[ChangeListener]
    _status_listeners: list[StatusListener]

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` with a :class:`Change` whenever the answers may have changed."""
        self._listeners = [*self._listeners, listener]

    def remove_change_listener(self, listener: ChangeListener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        self._listeners = [x for x in self._listeners if x != listener]

    def add_status_listener(self, listener: StatusListener) -> None:
        """Call ``listener`` with a :class:`StatusChange` whenever the status moves."""
        self._status_listeners = [*self._status_listeners, listener]

    def remove_status_listener(self, listener: StatusListener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        self._status_listeners = [x for x in self._status_listeners if x != listener]

    def _notify_change(self, change: Change) -> None:
        _tell_each(self._listeners, change, "change")

    def _notify_status(self, change: StatusChange) -> None:
        _tell_each(self._status_listeners, change, "status")

    @abstractmethod
    def close(self) -> None:
        """Release what the client holds (each client says what)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _tell_each(listeners: list[Callable[[T], None]], event: T, kind: str) -> None:
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            log.exception("flagsvc: a %s listener failed", kind)
