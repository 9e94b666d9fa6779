"""Building :class:`~flagsvc_sdk.evaluation.Evaluation` answers: the caller's-default rule.

The rule itself is documented with :class:`~flagsvc_sdk.evaluation.Evaluation` (module
docstring of ``evaluation.py``); here are the functions that apply it, and
:class:`Answers`, one snapshot's shared answers.
"""

from __future__ import annotations

from .engine import Reason
from .engine import Result
from .evaluation import ErrorCode
from .evaluation import Evaluation

__all__ = [
    "Answers",
    "from_result",
    "general_error",
    "not_ready",
    "resolve_value",
    "with_default",
]

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
