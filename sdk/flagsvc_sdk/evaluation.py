"""What the SDK answers: :class:`Evaluation`, its error codes, and the caller's-default rule.

The engine's :class:`~flagsvc_sdk.engine.Result` says what the flag serves a context; an
``Evaluation`` adds what the caller asked for and which snapshot answered. ``value`` is
the value of the variation served (``variation``), or the caller's ``default`` where
there is none: on any error (``reason`` ``ERROR`` with ``error_code``), and where the
flag is off without an off variation (a typed flag may leave off to the caller). A
typed getter (``get_string`` …) also answers the default, with ``TYPE_MISMATCH``, for a
flag of another type; nothing raises.

``reason`` is OpenFeature's (:class:`~flagsvc_sdk.engine.Reason`); ``CACHED`` marks an
answer from a bootstrap or cache file before the service's first snapshot arrived.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from enum import StrEnum
from typing import Any
from typing import Generic
from typing import NamedTuple
from typing import TypeVar

from .engine import Reason
from .engine import Stage

__all__ = ["ErrorCode", "Evaluation", "FlagMetadata", "JsonObject"]

T = TypeVar("T")
JsonObject = Mapping[str, Any] | Sequence[Any]
"""What an object flag serves: a JSON object or array (treat it as read-only)."""
FlagMetadata = dict[str, str | int]
"""``stage``, ``key_result``, ``flow_item``, ``matched_cohort``, ``version``: those known."""


class ErrorCode(StrEnum):
    """Why an evaluation answered the default (OpenFeature's names)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    PARSE_ERROR = "PARSE_ERROR"
    GENERAL = "GENERAL"
    PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
    PROVIDER_FATAL = "PROVIDER_FATAL"


class Evaluation(NamedTuple, Generic[T]):
    """The answer for one flag and context; ``version`` is the snapshot's (``None``: none yet).

    A named tuple rather than a frozen dataclass: it is built on every ``evaluate`` and a
    tuple costs a fifth as much. ``value`` may be shared with the snapshot (an object
    value): treat it as read-only. ``enabled``: the context is reached by the release.
    """

    value: T
    enabled: bool
    reason: Reason
    stage: Stage | None = None
    matched_cohort: str | None = None
    error_code: ErrorCode | None = None
    version: int | None = None
    variation: str | None = None
    key_result: int | None = None
    flow_item: str | None = None

    @property
    def flag_metadata(self) -> FlagMetadata:
        """The flag's metadata for this answer (OpenFeature's ``flag_metadata``)."""
        pairs = (
            ("stage", None if self.stage is None else self.stage.value),
            ("key_result", self.key_result),
            ("flow_item", self.flow_item),
            ("matched_cohort", self.matched_cohort),
            ("version", self.version),
        )
        return {name: value for name, value in pairs if value is not None}
