"""The ``is_enabled`` fast path: each flag compiled into one closure answering a bool.

``evaluate`` builds a full :class:`~flagsvc_sdk.engine.Result`; ``is_enabled`` only needs
on/off, and it is the call product code makes in its hottest loops. So when a snapshot
is loaded, every flag also gets a :data:`Check`: the engine's decision order (DESIGN.md
"Stage", ``engine/evaluator.py``) with the branches that cannot apply to that flag removed
ahead of time (a flag that is not killed never tests ``killed``), the engine's compiled
pieces reused (member sets, rule predicates, ``hash_prefix``, ``threshold``), and one
common rule inlined: a single ``in``/``eq`` rule over strings, where the engine's test
reduces to "the attribute is a string in the set". A check answers ``None`` where the
engine answers an error, so the caller's default applies, and it counts the evaluation
(see :class:`Counters`). ``tests/sdk/test_checks.py`` proves it agrees with
``engine.evaluate`` on every golden case and on generated flags and contexts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from collections.abc import Mapping

import mmh3

from .engine import BUCKETS
from .engine import Cohort
from .engine import Context
from .engine import Flag
from .engine import Predicate
from .engine import Stage

__all__ = ["Check", "Counters", "compile_check", "compile_checks"]

Check = Callable[[Context], bool | None]
"""``context -> True/False``; ``None`` for an invalid context (the caller's default)."""
Tick = Callable[[], object]

_hash = mmh3.hash
_SET_OPS = frozenset({"in", "eq"})


class Counters:
    """Exact, lock-free evaluation counts per flag, that survive snapshot swaps.

    Each flag has an ``itertools.count``; the hot path calls its ``__next__`` (one C call,
    atomic under the GIL, so no increment is lost). :meth:`take` reads a counter by
    calling ``next`` too and subtracts its own reads, so nothing is ever reset or swapped.
    Only the thread that flushes calls :meth:`take`.
    """

    def __init__(self) -> None:
        self._counts: dict[str, itertools.count[int]] = {}
        self.ticks: dict[str, Tick] = {}
        """Each flag's counting function, by flag key (read-only outside this class)."""
        self._taken: dict[str, int] = {}

    def tick(self, flag_key: str) -> Tick:
        """Return the counting function of ``flag_key`` (created on first use)."""
        tick = self.ticks.get(flag_key)
        if tick is None:
            counter = self._counts.setdefault(flag_key, itertools.count())
            tick = self.ticks.setdefault(flag_key, counter.__next__)
        return tick

    def count(self, flag_key: str) -> None:
        """Count one evaluation of ``flag_key`` (for paths without a compiled check)."""
        tick = self.ticks.get(flag_key)
        (tick or self.tick(flag_key))()

    def take(self) -> dict[str, int]:
        """Return the evaluations per flag since the previous call (zeros left out)."""
        counts = {}
        for flag_key, counter in list(self._counts.items()):
            seen = next(counter)  # the number of calls before this one
            taken = self._taken.get(flag_key, 0)
            self._taken[flag_key] = seen + 1  # our own read counts as one call
            if seen > taken:
                counts[flag_key] = seen - taken
        return counts


def compile_check(flag: Flag, tick: Tick) -> Check:
    """Compile ``flag`` into a :data:`Check` that agrees with ``engine.evaluate(...).enabled``."""
    if flag.killed or flag.stage is Stage.OFF:
        return _constant(flag, tick, on=False)
    if flag.stage is Stage.RELEASED:
        return _constant(flag, tick, on=True)
    if len(flag.cohorts) == 1 and not flag.cohorts[0].members and not flag.exclusions:
        string_set = _string_set_rule(flag.cohorts[0])
        if string_set is not None:
            return _one_string_rule(flag, tick, *string_set)
    return _targeted(flag, tick)


def compile_checks(flags: Mapping[str, Flag], counters: Counters) -> dict[str, Check]:
    """Compile every flag of a loaded snapshot (cheap: nothing is parsed again)."""
    return {key: compile_check(flag, counters.tick(key)) for key, flag in flags.items()}


def _user_key(context: Context) -> str | None:
    if type(context) is not dict and not isinstance(context, Mapping):
        return None
    user_key = context.get("key")
    return user_key if type(user_key) is str and user_key else None


def _constant(flag: Flag, tick: Tick, *, on: bool) -> Check:
    exclusions = flag.exclusions

    def check(context: Context) -> bool | None:
        tick()
        user_key = _user_key(context)
        if user_key is None:
            return None
        return on and user_key not in exclusions

    return check


def _targeted(flag: Flag, tick: Tick) -> Check:
    """Cohorts, then the rollout.

    Which cohort matched does not change a bool, so the cohorts' members and rules are
    folded into one set test and one predicate; empty parts are skipped by a truth test
    instead of a lookup.
    """
    exclusions = flag.exclusions
    members, match = _fold(flag.cohorts)
    prefix, cutoff = flag.hash_prefix, (flag.threshold if flag.stage is Stage.GENERAL else 0)

    def check(context: Context) -> bool | None:
        tick()
        if type(context) is dict:  # the common case, inlined: one call less
            user_key = context.get("key")
            if type(user_key) is not str or not user_key:
                return None
        elif (user_key := _user_key(context)) is None:
            return None
        if exclusions and user_key in exclusions:
            return False
        if (members and user_key in members) or (match is not None and match(context)):
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


def _one_string_rule(flag: Flag, tick: Tick, attribute: str, values: frozenset[str]) -> Check:
    """The commonest shape, fully inlined: one cohort of one string-set rule, no members,
    no exclusions (e.g. ``country in [NL, DE]`` plus a percentage rollout)."""
    prefix, cutoff = flag.hash_prefix, (flag.threshold if flag.stage is Stage.GENERAL else 0)

    def check(context: Context) -> bool | None:
        tick()
        if type(context) is dict:
            user_key = context.get("key")
            if type(user_key) is not str or not user_key:
                return None
        elif (user_key := _user_key(context)) is None:
            return None
        value = context.get(attribute)
        if isinstance(value, str) and value in values:
            return True
        return cutoff > 0 and _hash(prefix + user_key, 0, False) % BUCKETS < cutoff

    return check


def _string_set_rule(cohort: Cohort) -> tuple[str, frozenset[str]] | None:
    """``(attribute, values)`` if the cohort is exactly one ``in``/``eq`` rule over strings.

    The engine's set test (``operators._test_in``) maps booleans to private keys and
    treats unhashable values as a mismatch; against a set of strings both can only miss,
    so "is a string and in the set" gives the same answer with two calls fewer.
    """
    if len(cohort.rules) != 1:
        return None
    rule = cohort.rules[0]
    if rule.op not in _SET_OPS or not all(type(value) is str for value in rule.values):
        return None
    return rule.attribute, frozenset(str(value) for value in rule.values)


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
