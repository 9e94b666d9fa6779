"""The surface product code types against: :class:`FlagsClient`.

:class:`~flagsvc_sdk.Client` and :class:`~flagsvc_sdk.testing.InMemoryClient` both
satisfy it, so code that takes a ``FlagsClient`` runs on the real client in production
and on the double in tests, and mypy checks both (``tests/type_check/``)::

    def checkout(flags: FlagsClient, user: User) -> Page:
        if flags.is_enabled("new-checkout", {"key": user.id}):
            ...
"""

from __future__ import annotations

from typing import Protocol

from .engine import Context
from .evaluation import Evaluation
from .events import ChangeListener
from .events import Status
from .events import StatusListener
from .stats import Stats

__all__ = ["FlagsClient"]


class FlagsClient(Protocol):
    """A flagsvc client: local evaluation that never raises, opt-in cohorts, lifecycle."""

    def is_enabled(self, key: str, context: Context, default: bool = False) -> bool:
        """Whether flag ``key`` is on for ``context``; ``default`` on any error."""
        ...

    def evaluate(self, key: str, context: Context, default: object = None) -> Evaluation:
        """Flag ``key`` for ``context``, with its reason, stage and error code."""
        ...

    def all_flags(self, context: Context) -> dict[str, Evaluation]:
        """Every flag for ``context``."""
        ...

    def enroll(self, cohort: str, context: Context) -> bool:
        """Enrol the context's user in an opt-in cohort; ``False`` on failure."""
        ...

    def leave(self, cohort: str, context: Context) -> bool:
        """Take the context's user out of an opt-in cohort; ``False`` on failure."""
        ...

    def wait_until_ready(self, timeout: float) -> bool:
        """Wait for a first answer; whether a snapshot is held."""
        ...

    @property
    def status(self) -> Status:
        """How far the answers can be trusted."""
        ...

    @property
    def version(self) -> int | None:
        """The version of the snapshot in use."""
        ...

    @property
    def stats(self) -> Stats:
        """What background work did."""
        ...

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Be told when a new snapshot changes answers."""
        ...

    def remove_change_listener(self, listener: ChangeListener) -> None:
        """Stop being told."""
        ...

    def add_status_listener(self, listener: StatusListener) -> None:
        """Be told when the status moves."""
        ...

    def remove_status_listener(self, listener: StatusListener) -> None:
        """Stop being told."""
        ...

    def postfork(self) -> None:
        """Restart background work in a forked child."""
        ...

    def close(self, timeout: float = 2.0) -> None:
        """Stop background work (evaluation keeps answering)."""
        ...
