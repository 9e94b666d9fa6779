"""The hot paths of ``is_enabled`` and ``evaluate``: every flag compiled once per snapshot.

The engine's ``evaluate`` walks the decision order (``docs/product.md``,
``engine/evaluator.py``) through half a dozen Python calls, and in CPython 3.11 each call
costs about a tenth of a whole ``is_enabled`` (measured: ~430 of ~3,900 instructions).
``is_enabled`` is the call product code makes in its hottest loops, so when a snapshot is
loaded every flag gets:

- a :data:`Plan`, read by ``Client.is_enabled`` with one tuple unpack. The common
  targeted flag has the *set shape*: "on iff ``context[attribute]`` is in ``values``,
  else if the user's bucket is below ``cutoff``" (a rule like ``country in [NL, DE]``,
  or a members list, which is a set test of the user key; see :func:`set_shape`). With
  a rollout, ``is_enabled`` runs that inline, with no further call. Any other flag
  (early access: the set test alone, no hash), and any context that is not a plain
  ``dict``, goes to the plan's :data:`Check`.
- a :data:`Check`: the decision order with the branches that cannot apply to that flag
  removed ahead of time (a flag that is not killed never tests ``killed``), the engine's
  compiled pieces reused (member sets, rule predicates, ``hash_prefix``, ``threshold``).
  A check answers ``None`` where the engine answers an error (the caller's default).
- a :data:`Resolver` for ``evaluate`` without a default: the engine's answer, as the
  snapshot's shared :class:`~flagsvc_sdk.evaluation.Evaluation`, in one call for the set
  shape (the OpenFeature provider's boolean path), through the engine otherwise.

Counts: every plan, check and resolver carries its flag's :class:`Tally`: every
evaluation adds to ``count``, an answer "on" through an early-access cohort also to
``cohort`` (the service's early-access reach; only the cohort branches pay for it).
``tests/sdk/test_checks.py`` proves checks, resolvers and ``Client.is_enabled`` agree with
``engine.evaluate`` on generated flags and contexts (answers and cohort counts), and
``tests/sdk/test_spec.py`` on every golden case.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import NamedTuple

import mmh3

from .engine import BUCKETS
from .engine import Cohort
from .engine import Context
from .engine import Flag
from .engine import Predicate
from .engine import Reason
from .engine import Result
from .engine import Snapshot
from .engine import Stage
from .engine import evaluate
from .evaluation import Evaluation

__all__ = [
    "Check",
    "Counters",
    "Plan",
    "Resolved",
    "Resolver",
    "Taken",
    "Tally",
    "compile_check",
    "compile_plan",
    "compile_plans",
    "compile_resolver",
    "compile_resolvers",
    "set_shape",
]

Check = Callable[[Context], bool | None]
"""``context -> True/False``; ``None`` for an invalid context (the caller's default)."""
Resolver = Callable[[Context], Evaluation]
"""``context -> Evaluation`` for ``evaluate`` without a default; never raises."""
SetShape = tuple[str, frozenset[object], str, int]
"""``(attribute, values, hash_prefix, cutoff)``: on iff ``context.get(attribute) in values``
or ``cutoff > 0`` and the user's bucket is below ``cutoff``."""
Answer = Callable[[Result], Evaluation]

_hash = mmh3.hash
_SET_OPS = frozenset({"in", "eq"})
_TARGETED = frozenset({Stage.EARLY_ACCESS, Stage.GENERAL})
_NOBODY: frozenset[object] = frozenset()
_COHORT = Reason.COHORT


class Tally:
    """One flag's evaluation count, a plain attribute the hot path adds ``1.0`` to.

    ``cohort`` counts the answers "on" through an early-access cohort (reason
    ``COHORT``), added to on those branches only.

    Cheaper than any call (an ``itertools.count`` tick cost a tenth of an evaluation),
    and a ``float`` because CPython adds two floats without a ``malloc`` (a free list)
    while an ``int`` above 256 is allocated anew on every add: 3 % of ``is_enabled``.
    Exact up to 2**53 evaluations (285 years at a million a second).

    The read, add and write are three bytecodes with no point between them where
    CPython switches threads (no call, no backward jump), so on GIL builds no increment
    is lost; ``tests/sdk/test_metrics.py`` races eight threads to hold that. On a
    free-threaded build two threads adding at the same instant can lose one of the two
    increments: counts feed stale-flag reports, where "evaluated, about this often" is
    what matters, so that is accepted rather than paying for a lock or an atomic.
    """

    __slots__ = ("cohort", "count")

    def __init__(self) -> None:
        self.count = 0.0
        self.cohort = 0.0


class Taken(NamedTuple):
    """One flag's evaluations since the previous take, and how many were on by a cohort."""

    evaluations: int
    cohort: int = 0


class Counters:
    """Evaluation counts per flag, one :class:`Tally` each, kept across snapshot swaps.

    Tallies only grow: :meth:`take` remembers what it reported and subtracts, so it
    never writes to a tally a reader is incrementing. Only the flushing thread takes.
    """

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        """Each flag's tally, by flag key (read-only outside this class)."""
        self._taken: dict[str, Taken] = {}

    def tally(self, flag_key: str) -> Tally:
        """Return the tally of ``flag_key`` (created on first use)."""
        tally = self.tallies.get(flag_key)
        return tally if tally is not None else self.tallies.setdefault(flag_key, Tally())

    def count(self, flag_key: str, result: Result) -> None:
        """Count one evaluation of ``flag_key`` answered ``result`` (paths without a plan)."""
        tally = self.tally(flag_key)
        tally.count += 1.0
        if result.reason is _COHORT:
            tally.cohort += 1.0

    def take(self) -> dict[str, Taken]:
        """Return the evaluations per flag since the previous call (zeros left out)."""
        counts = {}
        for flag_key, tally in list(self.tallies.items()):
            seen = Taken(int(tally.count), int(tally.cohort))
            taken = self._taken.get(flag_key, Taken(0))
            if seen.evaluations > taken.evaluations:
                counts[flag_key] = Taken(
                    seen.evaluations - taken.evaluations, seen.cohort - taken.cohort
                )
                self._taken[flag_key] = seen
        return counts


# --- plans: what Client.is_enabled runs -------------------------------------------------

Plan = tuple[Tally, type[dict[str, object]] | None, str, frozenset[object], str, int, Check]
"""``(tally, kind, attribute, values, hash_prefix, cutoff, check)``.

``kind`` is ``dict`` when the flag has the set shape with a rollout, ``None`` otherwise,
so one ``type(context) is kind`` both picks the inline path and checks the context is a
plain dict (the only type its ``context["key"]`` and ``.get`` are exact for); everything
else goes to ``check``."""


def compile_plan(flag: Flag, tally: Tally) -> Plan:
    """Compile ``flag`` into the :data:`Plan` ``Client.is_enabled`` runs.

    Only a set shape *with* a rollout runs inline: without one (early access) the
    inline path would need a ``cutoff`` test on every call, 1.5 % of every flag's time,
    to spare these flags a hash; their check (:func:`_set_only`) does no hash at all.
    """
    check = compile_check(flag, tally)
    shape = set_shape(flag)
    if shape is None or not shape[3]:
        return tally, None, "", _NOBODY, flag.hash_prefix, 0, check
    attribute, values, prefix, cutoff = shape
    return tally, dict, attribute, values, prefix, cutoff, check


def compile_plans(flags: Mapping[str, Flag], counters: Counters) -> dict[str, Plan]:
    """Compile every flag of a loaded snapshot (cheap: nothing is parsed again)."""
    return {key: compile_plan(flag, counters.tally(key)) for key, flag in flags.items()}


def set_shape(flag: Flag) -> SetShape | None:
    """The flag as one set test plus its rollout (:data:`SetShape`), or ``None``.

    That is a flag in early access or general, not killed, without exclusions, whose
    cohorts fold into one set test: none (an empty set), one cohort of members only
    (a test of the user key, which rules know as the attribute ``key``), or one cohort
    of exactly one string-set rule (:func:`_string_set_rule`).
    """
    if flag.killed or flag.exclusions or flag.stage not in _TARGETED:
        return None
    test = _set_test(flag.cohorts)
    if test is None:
        return None
    cutoff = flag.threshold if flag.stage is Stage.GENERAL else 0
    return test[0], test[1], flag.hash_prefix, cutoff


def _set_test(cohorts: tuple[Cohort, ...]) -> tuple[str, frozenset[object]] | None:
    if not cohorts:
        return "key", _NOBODY
    if len(cohorts) > 1:
        return None
    cohort = cohorts[0]
    if not cohort.rules:
        return "key", cohort.members  # the set itself, never a copy (1e6 keys)
    return None if cohort.members else _string_set_rule(cohort)


# --- checks: the general bool path ------------------------------------------------------


def compile_check(flag: Flag, tally: Tally | None = None) -> Check:
    """Compile ``flag`` into a :data:`Check` that agrees with ``engine.evaluate(...).enabled``.

    A cohort hit adds to ``tally.cohort`` (the caller counts the evaluation itself).
    """
    tally = Tally() if tally is None else tally
    if flag.killed or flag.stage is Stage.OFF:
        return _constant(flag, on=False)
    if flag.stage is Stage.RELEASED:
        return _constant(flag, on=True)
    shape = set_shape(flag)
    if shape is not None and not shape[3]:
        return _set_only(shape[0], shape[1], tally)
    return _targeted(flag, tally)


def _user_key(context: Context) -> str | None:
    if type(context) is not dict and not isinstance(context, Mapping):
        return None
    user_key = context.get("key")
    return user_key if type(user_key) is str and user_key else None


def _constant(flag: Flag, *, on: bool) -> Check:
    exclusions = flag.exclusions

    def check(context: Context) -> bool | None:
        user_key = _user_key(context)
        if user_key is None:
            return None
        return on and user_key not in exclusions

    return check


def _set_only(attribute: str, values: frozenset[object], tally: Tally) -> Check:
    """The set shape without a rollout: one set test (see :func:`_string_set_rule` for
    why ``in`` with an unhashable value as a mismatch is the engine's answer)."""

    def check(context: Context) -> bool | None:
        if type(context) is dict:  # the common case, inlined: one call less
            user_key = context.get("key")
            if type(user_key) is not str or not user_key:
                return None
        elif _user_key(context) is None:
            return None
        try:
            if context.get(attribute) in values:
                tally.cohort += 1.0
                return True
        except TypeError:
            pass
        return False

    return check


def _targeted(flag: Flag, tally: Tally) -> Check:
    """Cohorts, then the rollout.

    Which cohort matched does not change a bool, so the cohorts' members and rules are
    folded into one set test and one predicate; empty parts are skipped by a truth test
    instead of a lookup.
    """
    exclusions = flag.exclusions
    members, match = _fold(flag.cohorts)
    prefix, cutoff = flag.hash_prefix, (flag.threshold if flag.stage is Stage.GENERAL else 0)

    def check(context: Context) -> bool | None:
        user_key = _user_key(context)
        if user_key is None:
            return None
        if exclusions and user_key in exclusions:
            return False
        if (members and user_key in members) or (match is not None and match(context)):
            tally.cohort += 1.0
            return True
        return cutoff > 0 and _hash(prefix + user_key, 0, False) % BUCKETS < cutoff

    return check


def _fold(cohorts: tuple[Cohort, ...]) -> tuple[frozenset[str], Predicate | None]:
    """One member set (reused, never copied) and one predicate for all the cohorts."""
    member_sets = [cohort.members for cohort in cohorts if cohort.members]
    matches = [m for m in map(_match, cohorts) if m is not None]
    members = member_sets.pop() if len(member_sets) == 1 else frozenset()
    if member_sets:  # several member lists: test each (a union would copy 1e6 keys)
        matches.insert(0, _in_any(tuple(member_sets)))
    return members, _any(tuple(matches))


def _in_any(member_sets: tuple[frozenset[str], ...]) -> Predicate:
    def in_any(context: Context) -> bool:
        user_key = context.get("key")
        return any(user_key in members for members in member_sets)

    return in_any


def _any(predicates: tuple[Predicate, ...]) -> Predicate | None:
    if len(predicates) <= 1:
        return predicates[0] if predicates else None

    def any_match(context: Context) -> bool:
        return any(predicate(context) for predicate in predicates)

    return any_match


def _string_set_rule(cohort: Cohort) -> tuple[str, frozenset[object]] | None:
    """``(attribute, values)`` if the cohort is exactly one ``in``/``eq`` rule over strings.

    The engine's set test (``operators._test_in``) is "hashable and in the set", with
    booleans mapped to private keys that no string equals; against a set of strings
    that is what ``value in values`` answers, once an unhashable value (``TypeError``)
    is taken as a mismatch.
    """
    if len(cohort.rules) != 1:
        return None
    rule = cohort.rules[0]
    if rule.op not in _SET_OPS or not all(type(value) is str for value in rule.values):
        return None
    return rule.attribute, frozenset(rule.values)


def _match(cohort: Cohort) -> Predicate | None:
    """The cohort's rule predicate; a string-set rule is inlined (see above)."""
    string_set = _string_set_rule(cohort)
    if string_set is None:
        return cohort.match_rules
    attribute, values = string_set

    def match(context: Context) -> bool:
        value = context.get(attribute)
        return isinstance(value, str) and value in values

    return match


# --- resolvers: evaluate without a default ----------------------------------------------

Resolved = tuple[Tally, Resolver]


def compile_resolvers(
    snapshot: Snapshot, counters: Counters, answer: Answer
) -> dict[str, Resolved]:
    """Compile a resolver for every flag; ``answer`` turns an engine result into the
    snapshot's shared ``Evaluation`` (``store.Loaded.answer``)."""
    resolved = {}
    for key, flag in snapshot.index.items():
        tally = counters.tally(key)
        resolved[key] = (tally, compile_resolver(snapshot, flag, answer, tally))
    return resolved


def compile_resolver(
    snapshot: Snapshot, flag: Flag, answer: Answer, tally: Tally | None = None
) -> Resolver:
    """A :data:`Resolver` for ``flag``: inline for the set shape, else the engine's.

    A cohort hit adds to ``tally.cohort`` (the caller counts the evaluation itself).
    """
    tally = Tally() if tally is None else tally

    def engine(context: Context) -> Evaluation:
        result = evaluate(snapshot, flag.key, context)
        if result.reason is _COHORT:
            tally.cohort += 1.0
        return answer(result)

    shape = set_shape(flag)
    if shape is None:
        return engine
    outcomes = flag.outcomes
    missed = answer(outcomes.not_targeted)
    hit = answer(flag.targets[0].result) if flag.targets else missed  # no cohort: no hit
    return _set_resolver(shape, (hit, answer(outcomes.rollout), missed), engine, tally)


def _set_resolver(
    shape: SetShape,
    answers: tuple[Evaluation, Evaluation, Evaluation],
    engine: Resolver,
    tally: Tally,
) -> Resolver:
    """The set shape's answers, prebuilt; invalid contexts go to the engine (its errors)."""
    attribute, values, prefix, cutoff = shape
    hit, rollout, missed = answers

    def resolve(context: Context) -> Evaluation:
        user_key = context.get("key") if type(context) is dict else None
        if type(user_key) is not str or not user_key:
            return engine(context)
        try:
            if context.get(attribute) in values:
                tally.cohort += 1.0
                return hit
        except TypeError:  # an unhashable value: a mismatch, as in the engine
            pass
        in_rollout = cutoff > 0 and _hash(prefix + user_key, 0, False) % BUCKETS < cutoff
        return rollout if in_rollout else missed

    return resolve
