"""A network-free stand-in for :class:`~flagsvc_sdk.Client`, for product teams' tests.

Same public methods as the real client; no threads, no HTTP, no snapshot. Set what each
flag answers, for everyone or per user, and the code under test sees exactly that::

    flags = InMemoryClient()
    flags.set_flag("new-checkout", True)              # a boolean flag, on for everyone
    flags.set_value("layout", "v2")                   # a string flag serving "v2"
    flags.set_user("new-checkout", "user-7", False)   # ... but off for user-7
    app = create_app(flags=flags)

Unknown flags answer the caller's default with ``FLAG_NOT_FOUND``, an invalid context
answers it with ``INVALID_CONTEXT``, a typed getter of another type with
``TYPE_MISMATCH``, just like the real client (a context without a key is answered as
for anyone). Reasons: ``STATIC`` / ``DISABLED`` for per-flag answers,
``TARGETING_MATCH`` for per-user ones (the matched cohort of a user turned on is
``"testing"``). ``enroll``/``leave`` record memberships in :attr:`cohorts`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from ._answers import from_result
from ._answers import type_mismatch
from ._listeners import Listeners
from .engine import FLAG_NOT_FOUND
from .engine import Context
from .engine import ErrorCode as EngineCode
from .engine import Reason
from .engine import Result
from .engine import Stage
from .engine import ValueType
from .engine import is_keyless
from .engine import user_key_of
from .engine.values import OFF
from .engine.values import ON
from .evaluation import Evaluation
from .evaluation import JsonObject
from .events import Change
from .events import ChangeListener
from .events import Status
from .events import StatusChange
from .events import StatusListener
from .stats import Stats

__all__ = ["InMemoryClient"]

_INVALID = Result(None, False, Reason.ERROR, error_code=EngineCode.INVALID_CONTEXT)
_STAGES = {Reason.STATIC: Stage.RELEASED, Reason.DISABLED: Stage.OFF}
_TYPES = {bool: ValueType.BOOLEAN, str: ValueType.STRING, int: ValueType.INTEGER,
          float: ValueType.FLOAT, dict: ValueType.OBJECT, list: ValueType.OBJECT}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Answer:
    enabled: bool
    value: object = None  # None: the caller's default
    variation: str | None = None


@dataclass(slots=True)
class _Flag:
    type: ValueType
    everyone: _Answer
    users: dict[str, _Answer] = field(default_factory=dict)


def _answer(enabled: bool, payload: object) -> tuple[ValueType, _Answer]:
    """A boolean answer, or a typed flag serving ``payload`` when on (the default off)."""
    if payload is None:
        return ValueType.BOOLEAN, _Answer(enabled, enabled, ON if enabled else OFF)
    value_type = _TYPES.get(type(payload), ValueType.OBJECT)
    return value_type, _Answer(enabled, payload if enabled else None, ON if enabled else None)


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
        """Make ``key`` answer ``enabled`` for everyone: a boolean flag, or with a
        ``payload`` a flag of its type serving it when on (the caller's default off)."""
        value_type, answer = _answer(enabled, payload)
        self._set(key, value_type, answer)

    def set_value(self, key: str, value: object, variation: str = ON) -> None:
        """Make ``key`` a flag of ``value``'s type serving ``value`` to everyone."""
        value_type = _TYPES.get(type(value), ValueType.OBJECT)
        self._set(key, value_type, _Answer(True, value, variation))

    def set_user(self, key: str, user_key: str, enabled: bool, payload: object = None) -> None:
        """Make ``key`` answer ``enabled`` for ``user_key`` only (the flag is off for others
        unless :meth:`set_flag` says otherwise)."""
        value_type, answer = _answer(enabled, payload)
        with self._lock:
            flag = self._flags.setdefault(key, _Flag(value_type, _answer(False, payload)[1]))
            flag.users[user_key] = answer
        self._changed(key)

    def _set(self, key: str, value_type: ValueType, everyone: _Answer) -> None:
        with self._lock:
            old = self._flags.get(key)
            users = old.users if old is not None else {}
            self._flags[key] = _Flag(value_type, everyone, users)
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

    def evaluate(self, key: str, context: Context, default: object = None) -> Evaluation[Any]:
        """Like :meth:`flagsvc_sdk.Client.evaluate` (same caller's-default rule)."""
        try:
            return from_result(self._result(key, context), default, self._version)
        except Exception:  # e.g. an unhashable key
            return from_result(FLAG_NOT_FOUND, default, self._version)

    def get_boolean(self, key: str, context: Context, default: bool) -> bool:
        """Like :meth:`flagsvc_sdk.Client.get_boolean`."""
        return self.get_boolean_details(key, context, default).value

    def get_string(self, key: str, context: Context, default: str) -> str:
        """Like :meth:`flagsvc_sdk.Client.get_string`."""
        return self.get_string_details(key, context, default).value

    def get_integer(self, key: str, context: Context, default: int) -> int:
        """Like :meth:`flagsvc_sdk.Client.get_integer`."""
        return self.get_integer_details(key, context, default).value

    def get_float(self, key: str, context: Context, default: float) -> float:
        """Like :meth:`flagsvc_sdk.Client.get_float`."""
        return self.get_float_details(key, context, default).value

    def get_object(self, key: str, context: Context, default: JsonObject) -> JsonObject:
        """Like :meth:`flagsvc_sdk.Client.get_object`."""
        return self.get_object_details(key, context, default).value

    def get_boolean_details(self, key: str, context: Context, default: bool) -> Evaluation[bool]:
        """Like :meth:`flagsvc_sdk.Client.get_boolean_details`."""
        return self._typed(key, context, default, ValueType.BOOLEAN)

    def get_string_details(self, key: str, context: Context, default: str) -> Evaluation[str]:
        """Like :meth:`flagsvc_sdk.Client.get_string_details`."""
        return self._typed(key, context, default, ValueType.STRING)

    def get_integer_details(self, key: str, context: Context, default: int) -> Evaluation[int]:
        """Like :meth:`flagsvc_sdk.Client.get_integer_details`."""
        return self._typed(key, context, default, ValueType.INTEGER)

    def get_float_details(self, key: str, context: Context, default: float) -> Evaluation[float]:
        """Like :meth:`flagsvc_sdk.Client.get_float_details`."""
        return self._typed(key, context, default, ValueType.FLOAT)

    def get_object_details(
        self, key: str, context: Context, default: JsonObject
    ) -> Evaluation[JsonObject]:
        """Like :meth:`flagsvc_sdk.Client.get_object_details`."""
        return self._typed(key, context, default, ValueType.OBJECT)

    def _typed(
        self, key: str, context: Context, default: Any, value_type: ValueType
    ) -> Evaluation[Any]:
        evaluation = self.evaluate(key, context, default)
        flag = self._flags.get(key) if isinstance(key, str) else None
        if flag is None or evaluation.error_code is not None or flag.type is value_type:
            return evaluation
        return type_mismatch(evaluation, default)

    def all_flags(self, context: Context) -> dict[str, Evaluation[Any]]:
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
            return FLAG_NOT_FOUND
        user_key = _user_key(context)
        if user_key is None and not is_keyless(context):
            return _INVALID
        answer = None if user_key is None else flag.users.get(user_key)
        if answer is not None:
            return _result(answer, Reason.TARGETING_MATCH, "testing" if answer.enabled else None)
        reason = Reason.STATIC if flag.everyone.enabled else Reason.DISABLED
        return _result(flag.everyone, reason, None)

    def _changed(self, key: str) -> None:
        self._version += 1
        self._notify_change(Change(self._version, self._version - 1, (key,), "testing"))


def _result(answer: _Answer, reason: Reason, cohort: str | None) -> Result:
    stage = _STAGES.get(reason, Stage.GENERAL)
    return Result(answer.value, answer.enabled, reason, stage, cohort, None, answer.variation)


def _user_key(context: object) -> str | None:
    try:
        return user_key_of(context)  # the engine's rule: integers count as their digits
    except Exception:  # a mapping whose get raises: invalid, as in the real client
        return None
