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
from .engine import Stage

__all__ = ["ErrorCode", "Evaluation"]


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
