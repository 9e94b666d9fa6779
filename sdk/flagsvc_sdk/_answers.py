"""Building :class:`~flagsvc_sdk.evaluation.Evaluation` answers: the caller's-default rule.

The rule itself is documented with :class:`~flagsvc_sdk.evaluation.Evaluation` (module
docstring of ``evaluation.py``); here are the functions that apply it, and
:class:`Answers`, one snapshot's shared answers.
"""

from __future__ import annotations

from typing import Any

from .engine import Reason
from .engine import Result
from .evaluation import ErrorCode
from .evaluation import Evaluation

__all__ = [
    "Answers",
    "from_result",
    "general_error",
    "not_ready",
    "type_mismatch",
    "with_default",
]

_ERROR_CODES = {code.value: code for code in ErrorCode}
_CACHED = Reason.CACHED


def from_result(
    result: Result, default: object, version: int, *, cached: bool = False
) -> Evaluation[Any]:
    """Turn an engine result into the SDK's answer, ``default`` where no value is served.

    ``cached``: the snapshot came from a file, not yet from the service (``CACHED``).
    """
    code = result.error_code
    value = result.value if code is None and result.value is not None else default
    return Evaluation(
        value,
        result.enabled,
        _CACHED if cached and code is None else result.reason,
        result.stage,
        result.matched_cohort,
        None if code is None else _ERROR_CODES.get(code, ErrorCode.GENERAL),
        version,
        result.variation,
        result.key_result,
        result.flow_item,
    )


def with_default(evaluation: Evaluation[Any], default: object) -> Evaluation[Any]:
    """Apply the caller's default to an answer built without one (value ``None`` where
    no variation value is served)."""
    if default is None or evaluation.value is not None:
        return evaluation
    return evaluation._replace(value=default)


def type_mismatch(evaluation: Evaluation[Any], default: object) -> Evaluation[Any]:
    """The answer to a typed getter of the wrong type: the default, reason ``ERROR``."""
    return evaluation._replace(
        value=default,
        reason=Reason.ERROR,
        error_code=ErrorCode.TYPE_MISMATCH,
        variation=None,
        enabled=False,
    )


class Answers:
    """One snapshot's :class:`Evaluation` of each engine result, built once and shared.

    The engine pre-builds every result a flag can give, so a snapshot has only a few;
    each is converted once (no caller's default) and the same tuple is answered again.
    Keyed by identity, and the entry keeps the result alive, so an id can never be
    reused for another result while cached. ``cached``: the snapshot came from a file.
    """

    __slots__ = ("_cache", "cached", "version")

    _LIMIT = 10_000  # bounded even if results were ever built per call

    def __init__(self, version: int, *, cached: bool = False) -> None:
        self.version = version
        self.cached = cached
        self._cache: dict[int, tuple[Result, Evaluation[Any]]] = {}

    def of(self, result: Result) -> Evaluation[Any]:
        """The shared :class:`Evaluation` of ``result``."""
        cached = self._cache.get(id(result))
        if cached is not None and cached[0] is result:
            return cached[1]
        evaluation = from_result(result, None, self.version, cached=self.cached)
        if len(self._cache) < self._LIMIT:
            self._cache[id(result)] = (result, evaluation)
        return evaluation


def not_ready(default: object) -> Evaluation[Any]:
    """Answer before any snapshot is held: the default, reason ``ERROR``."""
    return Evaluation(default, False, Reason.ERROR, error_code=ErrorCode.PROVIDER_NOT_READY)


def general_error(default: object, version: int | None) -> Evaluation[Any]:
    """Answer when something unexpected failed inside the SDK."""
    return Evaluation(default, False, Reason.ERROR, error_code=ErrorCode.GENERAL, version=version)
