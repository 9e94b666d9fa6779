"""The surface product code types against: :class:`FlagsClient`.

:class:`~flagsvc_sdk.Client` and :class:`~flagsvc_sdk.testing.InMemoryClient` both
satisfy it, so code that takes a ``FlagsClient`` runs on the real client in production
and on the double in tests, and mypy checks both (``tests/type_check/``)::

    def checkout(flags: FlagsClient, user: User) -> Page:
        if flags.is_enabled("new-checkout", {"key": user.id}):
            ...
"""

from __future__ import annotations

from typing import Any
from typing import Protocol

from .engine import Context
from .evaluation import Evaluation
from .evaluation import JsonObject
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

    def evaluate(self, key: str, context: Context, default: object = None) -> Evaluation[Any]:
        """Flag ``key`` for ``context``: variation, value, reason, error code, metadata."""
        ...

    def get_boolean(self, key: str, context: Context, default: bool) -> bool:
        """The boolean flag's value; ``default`` on any error or another type."""
        ...

    def get_string(self, key: str, context: Context, default: str) -> str:
        """The string flag's value; ``default`` on any error or another type."""
        ...

    def get_integer(self, key: str, context: Context, default: int) -> int:
        """The integer flag's value; ``default`` on any error or another type."""
        ...

    def get_float(self, key: str, context: Context, default: float) -> float:
        """The float flag's value; ``default`` on any error or another type."""
        ...

    def get_object(self, key: str, context: Context, default: JsonObject) -> JsonObject:
        """The object flag's value; ``default`` on any error or another type."""
        ...

    def get_boolean_details(self, key: str, context: Context, default: bool) -> Evaluation[bool]:
        """:meth:`get_boolean` with variation, reason, error code and metadata."""
        ...

    def get_string_details(self, key: str, context: Context, default: str) -> Evaluation[str]:
        """:meth:`get_string` with variation, reason, error code and metadata."""
        ...

    def get_integer_details(self, key: str, context: Context, default: int) -> Evaluation[int]:
        """:meth:`get_integer` with variation, reason, error code and metadata."""
        ...

    def get_float_details(self, key: str, context: Context, default: float) -> Evaluation[float]:
        """:meth:`get_float` with variation, reason, error code and metadata."""
        ...

    def get_object_details(
        self, key: str, context: Context, default: JsonObject
    ) -> Evaluation[JsonObject]:
        """:meth:`get_object` with variation, reason, error code and metadata."""
        ...

    def all_flags(self, context: Context) -> dict[str, Evaluation[Any]]:
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
