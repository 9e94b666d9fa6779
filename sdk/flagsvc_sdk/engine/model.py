"""Immutable values the engine works on: stages, reasons, results and a compiled snapshot.

Everything here is frozen so a loaded :class:`Snapshot` can be shared between threads and
swapped atomically by the SDK; compiled fields (predicates, thresholds, pre-built results)
are computed once by :func:`~flagsvc_sdk.engine.wire.load_snapshot`, never per evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

from .bucketing import is_unicode
from .bucketing import threshold

__all__ = [
    "Cohort",
    "Context",
    "ErrorCode",
    "Flag",
    "Outcomes",
    "Predicate",
    "Reason",
    "Result",
    "Rule",
    "Snapshot",
    "Stage",
    "Target",
    "off_value",
    "on_value",
]

Context: TypeAlias = Mapping[str, object]
"""``{"key": "<user key>", ...attributes}``; attribute ``"key"`` in a rule is the user key."""

Predicate: TypeAlias = Callable[[Context], bool]
"""A compiled rule or rule set: pure, never raises for JSON-like contexts."""


class Stage(StrEnum):
    """Release stage of a flag in one environment (retired flags are not in snapshots)."""

    OFF = "off"
    EARLY_ACCESS = "early_access"
    GENERAL = "general"
    RELEASED = "released"


class Reason(StrEnum):
    """Why an evaluation gave its answer; the names follow OpenFeature where they overlap."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    ERROR = "ERROR"
    KILLED = "KILLED"
    EXCLUDED = "EXCLUDED"
    OFF = "OFF"
    RELEASED = "RELEASED"
    COHORT = "COHORT"
    ROLLOUT = "ROLLOUT"
    NOT_TARGETED = "NOT_TARGETED"


class ErrorCode(StrEnum):
    """Machine-readable cause when ``reason`` is ERROR or FLAG_NOT_FOUND (OpenFeature codes)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    PARSE_ERROR = "PARSE_ERROR"
    GENERAL = "GENERAL"


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of one evaluation.

    ``value`` is the payload (or ``True``) when enabled; when off it is ``False`` for a
    flag without payload and ``None`` otherwise, so the SDK can substitute the caller's
    default. ``value`` is shared with the snapshot: treat it as read-only.
    """

    value: object
    enabled: bool
    reason: Reason
    stage: Stage | None = None
    matched_cohort: str | None = None
    error_code: ErrorCode | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One cohort condition: the context ``attribute`` ``op`` any of ``values``."""

    attribute: str
    op: str
    values: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Cohort:
    """A group of users: explicit ``members`` or everyone matching ALL ``rules``.

    ``match_rules`` is the compiled conjunction of ``rules``; it is ``None`` when there are
    no rules, because a cohort without rules matches only its members.
    """

    key: str
    members: frozenset[str]
    rules: tuple[Rule, ...]
    opt_in: bool
    match_rules: Predicate | None = field(default=None, compare=False, repr=False)


def on_value(payload: object) -> object:
    """Return the value of an enabled flag: its payload, or ``True`` without one."""
    return True if payload is None else payload


def off_value(payload: object) -> object:
    """Return the value of a disabled flag.

    ``False`` answers a boolean flag; ``None`` lets the SDK substitute the caller's default.
    """
    return False if payload is None else None


@dataclass(frozen=True, slots=True)
class Target:
    """A cohort paired with the result it gives for one flag (hot-path shape)."""

    members: frozenset[str]
    match_rules: Predicate | None
    result: Result


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Every constant result a flag can give, built once so evaluation never allocates."""

    invalid_context: Result
    killed: Result
    excluded: Result
    off: Result
    released: Result
    rollout: Result
    not_targeted: Result

    @classmethod
    def for_flag(cls, stage: Stage, payload: object) -> Outcomes:
        """Build the constant results of a flag in ``stage`` with ``payload``."""
        on, off = on_value(payload), off_value(payload)
        return cls(
            invalid_context=Result(
                None, False, Reason.ERROR, stage, None, ErrorCode.INVALID_CONTEXT
            ),
            killed=Result(off, False, Reason.KILLED, stage),
            excluded=Result(off, False, Reason.EXCLUDED, stage),
            off=Result(off, False, Reason.OFF, stage),
            released=Result(on, True, Reason.RELEASED, stage),
            rollout=Result(on, True, Reason.ROLLOUT, stage),
            not_targeted=Result(off, False, Reason.NOT_TARGETED, stage),
        )


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag's state in one environment, compiled for evaluation.

    The last four fields are derived in ``__post_init__``, so a hand-built flag is always
    consistent: ``threshold`` is ``round(rollout_percent * 100)`` (in the rollout iff the
    bucket is below it), ``hash_prefix`` is ``f"{key}:{salt}:"`` so bucketing only appends
    the user key, ``targets`` are the cohorts in order with their results, and
    ``outcomes`` the other results.

    :raise ValueError: if ``key`` or ``salt`` is not valid Unicode (they are hashed).
    """

    key: str
    salt: str
    stage: Stage
    rollout_percent: float
    killed: bool
    cohorts: tuple[Cohort, ...]
    exclusions: frozenset[str]
    payload: object
    threshold: int = field(init=False, compare=False)
    hash_prefix: str = field(init=False, compare=False, repr=False)
    targets: tuple[Target, ...] = field(init=False, compare=False, repr=False)
    outcomes: Outcomes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not is_unicode(self.key) or not is_unicode(self.salt):
            raise ValueError("a flag's key and salt must be valid Unicode (no lone surrogates)")
        on = on_value(self.payload)
        targets = tuple(
            Target(c.members, c.match_rules, Result(on, True, Reason.COHORT, self.stage, c.key))
            for c in self.cohorts
        )
        object.__setattr__(self, "threshold", threshold(self.rollout_percent))
        object.__setattr__(self, "hash_prefix", f"{self.key}:{self.salt}:")
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "outcomes", Outcomes.for_flag(self.stage, self.payload))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything needed to evaluate one environment locally; build it with ``load_snapshot``.

    ``flags`` and ``cohorts`` are copied into read-only mappings, so the snapshot cannot
    change after it is built and the SDK can swap it atomically. ``index`` holds the same
    flags as a plain dict for the engine, because a dict lookup is the cheapest one.
    """

    spec_version: int
    environment: str
    version: int
    flags: Mapping[str, Flag]
    cohorts: Mapping[str, Cohort]
    index: Mapping[str, Flag] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = dict(self.flags)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "flags", MappingProxyType(index))
        object.__setattr__(self, "cohorts", MappingProxyType(dict(self.cohorts)))

    @property
    def flag_keys(self) -> tuple[str, ...]:
        """Return the flag keys in snapshot order."""
        return tuple(self.flags)
