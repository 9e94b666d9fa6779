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
from .values import BOOLEAN
from .values import Variations

__all__ = [
    "Cohort",
    "Context",
    "Counted",
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
    """Why an evaluation gave its answer: OpenFeature's reasons.

    ``STATIC``: released, everyone gets the on variation. ``TARGETING_MATCH``: a cohort
    (its variation) or an exclusion (off) decided. ``SPLIT``: the ramp decided (general
    rollout above 0 %, either side). ``DISABLED``: the flag is off or killed here.
    ``DEFAULT``: nothing targeted the context (early access, general at 0 %): off.
    ``CACHED``: the SDK's, for an answer from a file before the service's first snapshot.
    ``ERROR``: see ``error_code``; the caller's default is the answer.
    """

    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DISABLED = "DISABLED"
    DEFAULT = "DEFAULT"
    CACHED = "CACHED"
    ERROR = "ERROR"


class Counted(StrEnum):
    """What an SDK's metrics entry may break its evaluation count down by (its
    ``"reasons"`` field): a count, not an evaluation reason. ``COHORT``: answered on
    through an early-access cohort (``matched_cohort`` set), the flag's early-access reach.
    """

    COHORT = "COHORT"


class ErrorCode(StrEnum):
    """Machine-readable cause when ``reason`` is ERROR (OpenFeature's codes)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    PARSE_ERROR = "PARSE_ERROR"
    GENERAL = "GENERAL"


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of one evaluation.

    ``enabled``: the context is reached by the release (a cohort, the ramp, release).
    ``variation`` is the key of the variation served and ``value`` its value; both are
    ``None`` on an error and when the flag is off without an off variation, so the SDK
    answers the caller's default. ``value`` is shared with the snapshot: treat it as
    read-only. ``key_result`` and ``flow_item`` are the flag's (its metadata).
    """

    value: object
    enabled: bool
    reason: Reason
    stage: Stage | None = None
    matched_cohort: str | None = None
    error_code: ErrorCode | None = None
    variation: str | None = None
    key_result: int | None = None
    flow_item: str | None = None


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


@dataclass(frozen=True, slots=True)
class Target:
    """A cohort paired with the result it gives for one flag (hot-path shape)."""

    members: frozenset[str]
    match_rules: Predicate | None
    result: Result


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Every constant result a flag can give, built once so evaluation never allocates.

    ``split_out`` is the off side of a ramp above 0 % (reason ``SPLIT``);
    ``not_targeted`` is off with nothing deciding (``DEFAULT``); ``key_missing`` answers a
    keyless context where only the ramp could decide.
    """

    invalid_context: Result
    key_missing: Result
    killed: Result
    excluded: Result
    off: Result
    released: Result
    rollout: Result
    split_out: Result
    not_targeted: Result

    @classmethod
    def for_flag(cls, flag: Flag) -> Outcomes:
        """Build the constant results of ``flag``."""

        def error(code: ErrorCode) -> Result:
            return Result(None, False, Reason.ERROR, stage, None, code, None, *meta)

        def served(variation: str | None, enabled: bool, reason: Reason) -> Result:
            value = None if variation is None else values.values[variation]
            return Result(value, enabled, reason, stage, None, None, variation, *meta)

        stage, values, meta = flag.stage, flag.values, (flag.key_result, flag.flow_item)
        on, off = values.on, values.off
        return cls(
            invalid_context=error(ErrorCode.INVALID_CONTEXT),
            key_missing=error(ErrorCode.TARGETING_KEY_MISSING),
            killed=served(off, False, Reason.DISABLED),
            excluded=served(off, False, Reason.TARGETING_MATCH),
            off=served(off, False, Reason.DISABLED),
            released=served(on, True, Reason.STATIC),
            rollout=served(on, True, Reason.SPLIT),
            split_out=served(off, False, Reason.SPLIT),
            not_targeted=served(off, False, Reason.DEFAULT),
        )

    def cohort(self, flag: Flag, cohort: Cohort) -> Result:
        """What ``cohort`` gets: its own variation here, else the on variation."""
        variation = flag.cohort_variations.get(cohort.key, flag.values.on)
        value = flag.values.values[variation]
        return Result(
            value,
            True,
            Reason.TARGETING_MATCH,
            flag.stage,
            cohort.key,
            None,
            variation,
            flag.key_result,
            flag.flow_item,
        )


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag's state in one environment, compiled for evaluation.

    ``values`` are its type, variations and the keys served on and off (a boolean flag's
    by default); ``cohort_variations`` names the cohorts that serve their own variation
    here. The last four fields are derived in ``__post_init__``, so a hand-built flag is
    always consistent: ``threshold`` is ``round(rollout_percent * 100)`` (in the rollout
    iff the bucket is below it), ``hash_prefix`` is ``f"{key}:{salt}:"`` so bucketing only
    appends the user key, ``targets`` are the cohorts in order with their results, and
    ``outcomes`` the other results.

    :raise ValueError: if ``key`` or ``salt`` is not valid Unicode (they are hashed), or a
        variation key named by ``values`` or ``cohort_variations`` does not exist.
    """

    key: str
    salt: str
    stage: Stage
    rollout_percent: float
    killed: bool
    cohorts: tuple[Cohort, ...]
    exclusions: frozenset[str]
    values: Variations = BOOLEAN
    cohort_variations: Mapping[str, str] = field(default_factory=dict)
    key_result: int | None = None
    flow_item: str | None = None
    threshold: int = field(init=False, compare=False)
    hash_prefix: str = field(init=False, compare=False, repr=False)
    targets: tuple[Target, ...] = field(init=False, compare=False, repr=False)
    outcomes: Outcomes = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not is_unicode(self.key) or not is_unicode(self.salt):
            raise ValueError("a flag's key and salt must be valid Unicode (no lone surrogates)")
        served = {self.values.on, self.values.off, *self.cohort_variations.values()}
        if not served - {None} <= self.values.values.keys():
            raise ValueError(f"flag {self.key!r} serves a variation it does not have")
        outcomes = Outcomes.for_flag(self)
        targets = tuple(
            Target(c.members, c.match_rules, outcomes.cohort(self, c)) for c in self.cohorts
        )
        object.__setattr__(self, "threshold", threshold(self.rollout_percent))
        object.__setattr__(self, "hash_prefix", f"{self.key}:{self.salt}:")
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "outcomes", outcomes)


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
