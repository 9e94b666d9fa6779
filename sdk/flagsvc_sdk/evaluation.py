"""What the SDK answers: :class:`Evaluation`, its error codes, and the caller's-default rule.

The engine's :class:`~flagsvc_sdk.engine.Result` says what the flag is for a context; an
``Evaluation`` adds what the caller asked for and which snapshot answered. Rules for
``value`` (so non-boolean use reads naturally: ``evaluate(key, ctx, "blue").value``):

========================================  ===========================================
engine says                               ``Evaluation.value``
========================================  ===========================================
on                                        the flag's payload, or ``True`` without one
off, flag without payload (``False``)     ``False`` if ``default`` is ``None`` or a bool,
                                          else ``default``
off, flag with payload (``None``)         ``default``
error, unknown flag, no snapshot yet      ``default``
========================================  ===========================================

``reason`` is the engine's :class:`~flagsvc_sdk.engine.Reason` (unknown or retired flags
keep the engine's ``FLAG_NOT_FOUND`` so the SDK and the service's ``/sdk/v1/evaluate``
answer alike); every error sets ``error_code``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from .engine import Reason
from .engine import Result
from .engine import Stage

__all__ = [
    "Answers",
    "ErrorCode",
    "Evaluation",
    "from_result",
    "general_error",
    "not_ready",
    "resolve_value",
    "with_default",
]


class ErrorCode(StrEnum):
    """Why an evaluation answered the default (OpenFeature's names)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    PARSE_ERROR = "PARSE_ERROR"
    GENERAL = "GENERAL"
    PROVIDER_NOT_READY = "PROVIDER_NOT_READY"


class Evaluation(NamedTuple):
    """The answer for one flag and context; ``version`` is the snapshot's (``None``: none yet).

    A named tuple rather than a frozen dataclass: it is built on every ``evaluate`` and a
    tuple costs a fifth as much. ``value`` may be shared with the snapshot (a payload
    object): treat it as read-only.
    """

    value: object
    enabled: bool
    reason: Reason
    stage: Stage | None = None
    matched_cohort: str | None = None
    error_code: ErrorCode | None = None
    version: int | None = None


_ERROR_CODES = {code.value: code for code in ErrorCode}


def resolve_value(result: Result, default: object) -> object:
    """Apply the caller's-default rule of the module docstring to ``result``."""
    if result.enabled:
        return result.value
    if result.value is False and result.error_code is None:
        return False if default is None or isinstance(default, bool) else default
    return default


def from_result(result: Result, default: object, version: int) -> Evaluation:
    """Turn an engine result into the SDK's answer, substituting ``default`` where due."""
    code = result.error_code
    return Evaluation(
        result.value if result.enabled else resolve_value(result, default),
        result.enabled,
        result.reason,
        result.stage,
        result.matched_cohort,
        None if code is None else _ERROR_CODES.get(code, ErrorCode.GENERAL),
        version,
    )


def with_default(evaluation: Evaluation, default: object) -> Evaluation:
    """Apply the caller's-default rule to an answer built without a default.

    Such an answer's ``value`` is the payload or ``True`` when on, ``False`` when off for
    a flag without payload, ``None`` when off with one, and ``None`` on an error.
    """
    if default is None or evaluation.enabled:
        return evaluation
    if evaluation.value is False and evaluation.error_code is None and isinstance(default, bool):
        return evaluation  # off, no payload: False answers a boolean default
    return Evaluation(
        default,
        False,
        evaluation.reason,
        evaluation.stage,
        evaluation.matched_cohort,
        evaluation.error_code,
        evaluation.version,
    )


class Answers:
    """One snapshot's :class:`Evaluation` of each engine result, built once and shared.

    The engine pre-builds every result a flag can give, so a snapshot has only a few;
    each is converted once (no caller's default) and the same tuple is answered again.
    Keyed by identity, and the entry keeps the result alive, so an id can never be
    reused for another result while cached.
    """

    __slots__ = ("_cache", "version")

    _LIMIT = 10_000  # bounded even if results were ever built per call

    def __init__(self, version: int) -> None:
        self.version = version
        self._cache: dict[int, tuple[Result, Evaluation]] = {}

    def of(self, result: Result) -> Evaluation:
        """The shared :class:`Evaluation` of ``result``."""
        cached = self._cache.get(id(result))
        if cached is not None and cached[0] is result:
            return cached[1]
        evaluation = from_result(result, None, self.version)
        if len(self._cache) < self._LIMIT:
            self._cache[id(result)] = (result, evaluation)
        return evaluation


def not_ready(default: object) -> Evaluation:
    """Answer before any snapshot is held: the default, reason ``ERROR``."""
    return Evaluation(default, False, Reason.ERROR, error_code=ErrorCode.PROVIDER_NOT_READY)


def general_error(default: object, version: int | None) -> Evaluation:
    """Answer when something unexpected failed inside the SDK."""
    return Evaluation(default, False, Reason.ERROR, error_code=ErrorCode.GENERAL, version=version)
