"""A network-free stand-in for :class:`~flagsvc_sdk.Client`, for product teams' tests.

Same public methods as the real client; no threads, no HTTP, no snapshot. Set what each
flag answers, for everyone or per user, and the code under test sees exactly that::

    flags = InMemoryClient()
    flags.set_flag("new-checkout", True)                      # on for everyone
    flags.set_flag("banner", True, payload={"color": "blue"})  # on, with a payload
    flags.set_user("new-checkout", "user-7", False)            # ... but off for user-7
    app = create_app(flags=flags)

Unknown flags answer the caller's default with ``FLAG_NOT_FOUND``, an invalid context
answers it with ``INVALID_CONTEXT``, just like the real client. Reasons: ``RELEASED`` /
``OFF`` for per-flag answers, ``COHORT`` / ``EXCLUDED`` for per-user ones (the matched
cohort is ``"testing"``). ``enroll``/``leave`` record memberships in :attr:`cohorts`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from ._answers import from_result
from ._listeners import Listeners
from .engine import Context
from .engine import ErrorCode as EngineCode
from .engine import Reason
from .engine import Result
from .engine import Stage
from .engine import user_key_of
from .evaluation import Evaluation
from .events import Change
from .events import ChangeListener
from .events import Status
from .events import StatusChange
from .events import StatusListener
from .stats import Stats

__all__ = ["InMemoryClient"]

_NOT_FOUND = Result(None, False, Reason.FLAG_NOT_FOUND, error_code=EngineCode.FLAG_NOT_FOUND)
_INVALID = Result(None, False, Reason.ERROR, error_code=EngineCode.INVALID_CONTEXT)
_STAGES = {Reason.RELEASED: Stage.RELEASED, Reason.OFF: Stage.OFF}


@dataclass(frozen=True, slots=True)
class _Answer:
    enabled: bool
    payload: object = None


@dataclass(slots=True)
class _Flag:
    everyone: _Answer
    users: dict[str, _Answer] = field(default_factory=dict)


class InMemoryClient(Listeners):
    """Answers flags from values set by the test; thread-safe, never raises on evaluation."""

    def __init__(self, flags: Mapping[str, bool] | None = None) -> None:
        self._flags: dict[str, _Flag] = {}
        self._lock = threading.Lock()
        self._listeners: list[ChangeListener] = []
        self._status_listeners: list[StatusListener] = []
        self._status = Status.READY
        self._version = 0
        self.stats = Stats()
        """Always zeros: the double fetches nothing (there for code that reads it)."""
        self.cohorts: dict[str, set[str]] = {}
        """Opt-in memberships recorded by :meth:`enroll` / :meth:`leave`, by cohort key."""
        self.closed = False
        for flag_key, enabled in (flags or {}).items():
            self.set_flag(flag_key, enabled)

    # --- arranging ------------------------------------------------------------------

    def set_flag(self, key: str, enabled: bool, payload: object = None) -> None:
        """Make ``key`` answer ``enabled`` (and ``payload`` when on) for everyone."""
        with self._lock:
            old = self._flags.get(key)
            users = old.users if old is not None else {}
            self._flags[key] = _Flag(_Answer(enabled, payload), users)
        self._changed(key)

    def set_user(self, key: str, user_key: str, enabled: bool, payload: object = None) -> None:
        """Make ``key`` answer ``enabled`` for ``user_key`` only (the flag is off for others
        unless :meth:`set_flag` says otherwise)."""
        with self._lock:
            flag = self._flags.setdefault(key, _Flag(_Answer(False)))
            flag.users[user_key] = _Answer(enabled, payload)
        self._changed(key)

    def set_status(self, status: Status, message: str | None = None) -> None:
        """Make :attr:`status` answer ``status`` and tell the status listeners, to test
        how product code reacts to an outage (``STALE``) or a refused key (``FATAL``)."""
        previous, self._status = self._status, status
        if previous is not status:
            self._notify_status(StatusChange(status, previous, message))

    def remove_flag(self, key: str) -> None:
        """Forget ``key``: it answers like a retired flag (the caller's default)."""
        with self._lock:
            self._flags.pop(key, None)
        self._changed(key)

    # --- the Client API ---------------------------------------------------------------

    def is_enabled(self, key: str, context: Context, default: bool = False) -> bool:
        """Like :meth:`flagsvc_sdk.Client.is_enabled`."""
        evaluation = self.evaluate(key, context, None)
        return default if evaluation.error_code is not None else evaluation.enabled

    def evaluate(self, key: str, context: Context, default: object = None) -> Evaluation:
        """Like :meth:`flagsvc_sdk.Client.evaluate` (same caller's-default rule)."""
        try:
            return from_result(self._result(key, context), default, self._version)
        except Exception:  # e.g. an unhashable key
            return from_result(_NOT_FOUND, default, self._version)

    def all_flags(self, context: Context) -> dict[str, Evaluation]:
        """Like :meth:`flagsvc_sdk.Client.all_flags`."""
        return {key: self.evaluate(key, context) for key in list(self._flags)}

    def enroll(self, cohort: str, context: Context) -> bool:
        """Record the user in ``cohort``; ``False`` for a bad context or a closed client."""
        user_key = _user_key(context)
        if user_key is None or self.closed:
            return False
        self.cohorts.setdefault(cohort, set()).add(user_key)
        return True

    def leave(self, cohort: str, context: Context) -> bool:
        """Take the user out of ``cohort``."""
        user_key = _user_key(context)
        if user_key is None or self.closed:
            return False
        self.cohorts.get(cohort, set()).discard(user_key)
        return True

    def wait_until_ready(self, timeout: float) -> bool:
        """Always ready."""
        return True

    @property
    def status(self) -> Status:
        """``READY``, unless a test set another with :meth:`set_status`."""
        return self._status

    @property
    def version(self) -> int:
        """Counts the changes made with the setters."""
        return self._version

    def close(self, timeout: float = 2.0) -> None:
        """Mark closed (evaluation still answers, like the real client)."""
        self.closed = True

    def postfork(self) -> None:
        """Nothing to restart: the double has no threads and no connections."""

    # --- internals ----------------------------------------------------------------------

    def _result(self, key: str, context: Context) -> Result:
        flag = self._flags.get(key)
        if flag is None:
            return _NOT_FOUND
        user_key = _user_key(context)
        if user_key is None:
            return _INVALID
        answer = flag.users.get(user_key)
        if answer is not None:
            reason = Reason.COHORT if answer.enabled else Reason.EXCLUDED
            return _result(answer, reason, "testing" if answer.enabled else None)
        reason = Reason.RELEASED if flag.everyone.enabled else Reason.OFF
        return _result(flag.everyone, reason, None)

    def _changed(self, key: str) -> None:
        self._version += 1
        self._notify_change(Change(self._version, self._version - 1, (key,), "testing"))


def _result(answer: _Answer, reason: Reason, cohort: str | None) -> Result:
    payload = answer.payload
    if answer.enabled:
        value = True if payload is None else payload
    else:
        value = False if payload is None else None
    return Result(value, answer.enabled, reason, _STAGES.get(reason, Stage.GENERAL), cohort)


def _user_key(context: object) -> str | None:
    try:
        return user_key_of(context)  # the engine's rule: integers count as their digits
    except Exception:  # a mapping whose get raises: invalid, as in the real client
        return None
