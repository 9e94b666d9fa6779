"""The hot paths of ``is_enabled`` and ``evaluate``: every flag compiled once per snapshot.

The engine's ``evaluate`` (``engine/evaluator.py``) is the definition of the decision
order; it walks it through half a dozen Python calls, and in CPython 3.11 each call
costs about a tenth of a whole ``is_enabled``. ``is_enabled`` is the call product code
makes in its hottest loops, so when a snapshot is loaded every flag gets a :class:`Plan`:

- ``check``: the decision order for a valid context (its user key already in canonical
  form, see ``engine/context.py``), with the branches that cannot apply to that flag
  removed ahead of time (a flag that is not killed never tests ``killed``) and the
  engine's compiled pieces reused (member sets, rule predicates, ``hash_prefix``,
  ``threshold``). Which contexts are valid is decided once, by the caller
  (``Client.is_enabled``), with the engine's ``canonical_context``.
- the *set shape*, run by ``Client.is_enabled`` inline with no call at all: "on iff
  ``context[attribute]`` is in ``values``, else if the user's bucket is below
  ``cutoff``" (a rule like ``country in [NL, DE]``, or a members list, which is a set
  test of the user key; see :func:`set_shape`). Only flags with that shape *and* a
  rollout run inline; ``kind`` is ``dict`` for them and ``None`` otherwise.
- ``resolve``: ``evaluate``'s answer (the snapshot's shared
  :class:`~flagsvc_sdk.evaluation.Evaluation`), in one call for the set shape (the
  OpenFeature provider's boolean path), through the engine otherwise.
- ``value``: what the typed getters (``get_string`` …) run: the value served, or
  ``None`` for the caller's default; the set shape's values prebuilt, in one call.
  The getters run the set shape inline, like ``is_enabled`` (``Plan.hit``, ``on``,
  ``missed``), and call ``value`` for every other flag and context.

Counts: every plan, check and resolver carries its flag's :class:`Tally`: every
evaluation adds to ``count``, an answer "on" through an early-access cohort also to
``cohort`` (the service's early-access reach; only the cohort branches pay for it).
A check is never handed a keyless context, which a cohort's rules may still match:
``Client.is_enabled`` hands it to the plan's resolver, which counts that cohort answer
in the same tally (with no user key to note).

``tests/sdk/test_checks.py`` holds checks, resolvers and ``Client.is_enabled`` to
``engine.evaluate`` on generated flags and contexts (answers and cohort counts), and
``tests/sdk/test_spec.py`` to every golden case of ``spec/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple
from typing import TypeVar

import mmh3

from ._answers import Answers
from .engine import BUCKETS
from .engine import Cohort
from .engine import Context
from .engine import Flag
from .engine import Predicate
from .engine import Result
from .engine import Snapshot
from .engine import Stage
from .engine import ValueType
from .engine import evaluate
from .engine import user_key_of
from .evaluation import Evaluation

__all__ = [
    "Check",
    "Counters",
    "Plan",
    "Resolver",
    "Taken",
    "Tally",
    "compile_check",
    "compile_plan",
    "compile_plans",
    "compile_resolver",
    "compile_value",
    "set_shape",
]

Check = Callable[[Context, str], bool]
"""``(context, user_key) -> on?`` for a valid context whose ``user_key`` is canonical."""
Resolver = Callable[[Context], Evaluation[Any]]
"""``context -> Evaluation`` (no caller's default applied) for any context; never raises."""
ValueOf = Callable[[Context], object]
A = TypeVar("A")
"""``context -> the value served`` (``None``: the caller's default) for any context."""
SetShape = tuple[str, frozenset[object], str, int]
"""``(attribute, values, hash_prefix, cutoff)``: on iff ``context.get(attribute) in values``
or ``cutoff > 0`` and the user's bucket is below ``cutoff``."""

_hash = mmh3.hash
NOTED_PER_TAKE = 10_000
"""Cohort answers per flag whose user is noted between two takes (one batch): the
metrics thread sends at most this many hashed keys per flag and batch."""
_SET_OPS = frozenset({"in", "eq"})
_TARGETED = frozenset({Stage.EARLY_ACCESS, Stage.GENERAL})
_NOBODY: frozenset[object] = frozenset()


class Tally:
    """One flag's evaluation count, a plain attribute the hot path adds ``1.0`` to.

    ``cohort`` counts the answers "on" through an early-access cohort (reason
    ``COHORT``), added to on those branches only, which also note the user key in
    ``adopters`` (the service's distinct early adopters).

    Cheaper than any call (an ``itertools.count`` tick cost a tenth of an evaluation),
    and a ``float`` because CPython adds two floats without a ``malloc`` (a free list)
    while an ``int`` above 256 is allocated anew on every add. Exact up to 2**53
    evaluations (285 years at a million a second).

    The read, add and write are three bytecodes with no point between them where
    CPython switches threads (no call, no backward jump), so on GIL builds no increment
    is lost; ``tests/sdk/test_metrics.py`` races eight threads to hold that. On a
    free-threaded build two threads adding at the same instant can lose one of the two
    increments: counts feed stale-flag reports, where "evaluated, about this often" is
    what matters, so that is accepted rather than paying for a lock or an atomic.
    """

    __slots__ = ("adopters", "cohort", "count", "note_until")

    def __init__(self) -> None:
        self.count = 0.0
        self.cohort = 0.0
        self.adopters: dict[str, None] = {}
        """User keys the cohort branches answered on for since the last take, as dict
        keys (one ``STORE_SUBSCR``, no call; the same user again costs nothing more).
        Raw keys stay in this process: :meth:`Counters.take` hands them to the metrics
        thread, which hashes them before anything is sent."""
        self.note_until = float(NOTED_PER_TAKE)
        """Cohort answers note their user only up to this ``cohort`` count, moved on by
        :meth:`Counters.take`: at most :data:`NOTED_PER_TAKE` per batch, so the dict stays
        small and in cache (a dict growing by a new user on every answer made the cohort
        branch several times slower) and past that the branch pays one comparison."""


class Taken(NamedTuple):
    """One flag's evaluations since the previous take, how many were on by a cohort, and
    for which user keys (raw: hashed by the reporter, off the hot path)."""

    evaluations: int
    cohort: int = 0
    adopters: tuple[str, ...] = ()


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

    def take(self) -> dict[str, Taken]:
        """Return the evaluations per flag since the previous call (zeros left out)."""
        counts = {}
        for flag_key, tally in list(self.tallies.items()):
            seen = _seen(tally)
            taken = self._taken.get(flag_key, Taken(0))
            if seen.evaluations > taken.evaluations:
                counts[flag_key] = Taken(
                    seen.evaluations - taken.evaluations,
                    seen.cohort - taken.cohort,
                    _drain(tally.adopters),
                )
                self._taken[flag_key] = seen
            tally.note_until = seen.cohort + float(NOTED_PER_TAKE)
        return counts

    def forget(self) -> None:
        """Count as reported everything counted so far (a forked child: the parent
        reports its own evaluations; the child must not report them again)."""
        self._taken = {key: _seen(tally) for key, tally in list(self.tallies.items())}
        for tally in list(self.tallies.values()):
            _drain(tally.adopters)


def _drain(adopters: dict[str, None]) -> tuple[str, ...]:
    """Remove and return the keys noted so far; a key noted meanwhile stays for next time
    (each is popped by itself, so no clear() can drop one added between two steps)."""
    keys = tuple(list(adopters))
    for key in keys:
        adopters.pop(key, None)
    return keys


def _seen(tally: Tally) -> Taken:
    return Taken(int(tally.count), int(tally.cohort))


class Plan:
    """Everything ``Client.is_enabled`` and ``Client.evaluate`` run for one flag.

    ``kind`` is ``dict`` when the flag has the set shape with a rollout (then
    ``attribute``, ``values``, ``prefix`` and ``cutoff`` describe it, and ``hit``,
    ``on`` and ``missed`` are the values it serves a cohort hit, a user inside the
    ramp and anyone else, ``hit_details`` … their shared answers; ``served`` is
    ``dict`` too when none of them is ``None``, the caller's default), ``None``
    otherwise: one ``type(context) is plan.kind`` both picks the inline path and checks
    the context is a plain dict (the only type its ``context["key"]`` and ``.get`` are
    exact for). Read-only after construction.
    """

    __slots__ = (
        "attribute",
        "check",
        "cutoff",
        "hit",
        "hit_details",
        "kind",
        "missed",
        "missed_details",
        "on",
        "on_details",
        "prefix",
        "resolve",
        "served",
        "tally",
        "value",
        "value_type",
        "values",
    )

    hit_details: Evaluation[Any]
    on_details: Evaluation[Any]
    missed_details: Evaluation[Any]

    def __init__(  # noqa: PLR0913 - the compiled pieces, each read by one hot path
        self,
        tally: Tally,
        check: Check,
        resolve: Resolver,
        value: ValueOf,
        value_type: ValueType,
        kind: type[dict[str, object]] | None = None,
        shape: SetShape = ("", _NOBODY, "", 0),
        served: tuple[object, object, object] = (None, None, None),
        details: tuple[Evaluation[Any], Evaluation[Any], Evaluation[Any]] | None = None,
    ) -> None:
        self.tally, self.check, self.resolve, self.kind = tally, check, resolve, kind
        self.value, self.value_type = value, value_type
        self.attribute, self.values, self.prefix, self.cutoff = shape
        self.hit, self.on, self.missed = served  # the set shape's values: the typed getters
        self.served = kind if None not in served else None  # ... when none is the default
        if details is not None:  # their answers (read only where ``served`` is dict)
            self.hit_details, self.on_details, self.missed_details = details


def compile_plan(snapshot: Snapshot, flag: Flag, tally: Tally, answers: Answers) -> Plan:
    """Compile ``flag`` into its :class:`Plan`.

    Only a set shape *with* a rollout runs inline: without one (early access) the
    inline path would need a ``cutoff`` test on every call to spare these flags a hash;
    their check (:func:`_set_only`) does no hash at all.
    """
    check, resolve = compile_check(flag, tally), compile_resolver(snapshot, flag, answers, tally)
    value, value_type = compile_value(flag, resolve, tally), flag.values.type
    shape = set_shape(flag)
    if shape is None or not shape[3]:
        return Plan(tally, check, resolve, value, value_type)
    hit, on, missed = _set_results(flag, shape)
    served = (hit.value, on.value, missed.value)
    details = (answers.of(hit), answers.of(on), answers.of(missed))
    return Plan(tally, check, resolve, value, value_type, dict, shape, served, details)


def compile_plans(snapshot: Snapshot, counters: Counters, answers: Answers) -> dict[str, Plan]:
    """Compile every flag of a loaded snapshot (cheap: nothing is parsed again)."""
    return {
        key: compile_plan(snapshot, flag, counters.tally(key), answers)
        for key, flag in snapshot.index.items()
    }


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


def compile_check(flag: Flag, tally: Tally) -> Check:
    """Compile ``flag`` into a :data:`Check` that agrees with ``engine.evaluate(...).enabled``
    for every valid context.

    A cohort hit adds to ``tally.cohort`` (the caller counts the evaluation itself).
    """
    if flag.killed or flag.stage is Stage.OFF:
        return _constant(flag, on=False)
    if flag.stage is Stage.RELEASED:
        return _constant(flag, on=True)
    shape = set_shape(flag)
    if shape is not None and not shape[3]:
        return _set_only(shape[0], shape[1], tally)
    return _targeted(flag, tally)


def _constant(flag: Flag, *, on: bool) -> Check:
    exclusions = flag.exclusions

    def check(context: Context, user_key: str) -> bool:
        return on and user_key not in exclusions

    return check


def _set_only(attribute: str, values: frozenset[object], tally: Tally) -> Check:
    """The set shape without a rollout: one set test (see :func:`_string_set_rule` for
    why ``in`` with an unhashable value as a mismatch is the engine's answer)."""

    def check(context: Context, user_key: str) -> bool:
        try:
            if context.get(attribute) in values:
                tally.cohort += 1.0
                if tally.cohort <= tally.note_until:
                    tally.adopters[user_key] = None
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

    def check(context: Context, user_key: str) -> bool:
        if exclusions and user_key in exclusions:
            return False
        if (members and user_key in members) or (match is not None and match(context)):
            tally.cohort += 1.0
            if tally.cohort <= tally.note_until:
                tally.adopters[user_key] = None
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


# --- resolvers: what evaluate answers ---------------------------------------------------


def compile_resolver(snapshot: Snapshot, flag: Flag, answers: Answers, tally: Tally) -> Resolver:
    """A :data:`Resolver` for ``flag``: inline for the set shape, else the engine's.

    A cohort hit adds to ``tally.cohort`` (the caller counts the evaluation itself).
    """
    answer = answers.of

    def engine(context: Context) -> Evaluation[Any]:
        result = evaluate(snapshot, flag.key, context)
        if result.matched_cohort is not None:
            tally.cohort += 1.0
            user_key = user_key_of(context)
            if user_key is not None and tally.cohort <= tally.note_until:
                tally.adopters[user_key] = None
        return answer(result)

    shape = set_shape(flag)
    if shape is None:
        return engine
    hit, rollout, missed = _set_results(flag, shape)
    return _set_resolver(shape, (answer(hit), answer(rollout), answer(missed)), engine, tally)


def _set_results(flag: Flag, shape: SetShape) -> tuple[Result, Result, Result]:
    """The set shape's three results: a cohort hit, inside the ramp, and neither (the off
    side of a ramp above 0 % is ``SPLIT``, with no ramp ``DEFAULT``)."""
    outcomes = flag.outcomes
    missed = outcomes.split_out if shape[3] else outcomes.not_targeted
    hit = flag.targets[0].result if flag.targets else missed  # no cohort: no hit
    return hit, outcomes.rollout, missed


def _set_resolver(
    shape: SetShape,
    answers: tuple[A, A, A],
    engine: Callable[[Context], A],
    tally: Tally,
) -> Callable[[Context], A]:
    """The set shape's answers (a hit, inside the ramp, neither), prebuilt: evaluations
    for ``evaluate``, values for the typed getters. Any context but a plain dict with a
    plain key (``engine.context.is_plain_key``) goes to ``engine``, which canonicalises
    it (keyless, integer, non-ASCII or invalid keys)."""
    attribute, values, prefix, cutoff = shape
    hit, rollout, missed = answers

    def resolve(context: Context) -> A:
        user_key = context.get("key") if type(context) is dict else None
        if type(user_key) is not str or not user_key or not user_key.isascii():
            return engine(context)
        try:
            if context.get(attribute) in values:
                tally.cohort += 1.0
                if tally.cohort <= tally.note_until:
                    tally.adopters[user_key] = None
                return hit
        except TypeError:  # an unhashable value: a mismatch, as in the engine
            pass
        in_rollout = cutoff > 0 and _hash(prefix + user_key, 0, False) % BUCKETS < cutoff
        return rollout if in_rollout else missed

    return resolve


# --- values: what the typed getters answer ----------------------------------------------


def compile_value(flag: Flag, resolve: Resolver, tally: Tally) -> ValueOf:
    """A :data:`ValueOf` for ``flag``: the set shape inline with its values prebuilt (a
    string flag with a cohort variation and a ramp in one call), else ``resolve``'s value.

    A cohort hit adds to ``tally.cohort`` (the caller counts the evaluation itself).
    """

    def resolved(context: Context) -> object:
        return resolve(context).value

    shape = set_shape(flag)
    if shape is None:
        return resolved
    hit, rollout, missed = (result.value for result in _set_results(flag, shape))
    return _set_resolver(shape, (hit, rollout, missed), resolved, tally)
