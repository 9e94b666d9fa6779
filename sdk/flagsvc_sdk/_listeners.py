"""What :class:`~flagsvc_sdk.Client` and the testing double share: listeners and ``with``.

Listeners are held in a list replaced on every change (copy-on-write), so the thread
that notifies reads it without a lock. A listener that raises is logged and the others
are still called: product code's callback must never stop the client.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

from .events import Change
from .events import ChangeListener

__all__ = ["Listeners"]

log = logging.getLogger("flagsvc_sdk")


class Listeners:
    """Change listeners, their notification, and ``with`` (which closes on exit)."""

    _listeners: list[ChangeListener]

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` with a :class:`Change` whenever the answers may have changed."""
        self._listeners = [*self._listeners, listener]

    def remove_change_listener(self, listener: ChangeListener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        self._listeners = [x for x in self._listeners if x != listener]

    def _notify_change(self, change: Change) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                log.exception("flagsvc: a change listener failed")

    def close(self) -> None:
        """Release what the client holds (each client says what)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
