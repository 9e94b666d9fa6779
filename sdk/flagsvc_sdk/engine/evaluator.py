"""Evaluation of a flag for a context: the decision order of ``docs/product.md``.

1. flag not in the snapshot -> ERROR / FLAG_NOT_FOUND
2. context invalid -> ERROR / INVALID_CONTEXT (no key at all is not invalid: keyless)
3. killed -> DISABLED (off)                   6. stage released -> STATIC (on)
4. user key excluded -> TARGETING_MATCH (off) 7. first cohort of the flag the context is
5. stage off -> DISABLED (off)                   in (early_access, general) -> TARGETING_MATCH
                                                 (the cohort's variation, else on)
8. general with a ramp above 0 -> SPLIT: on if the bucket is below the threshold, else off
9. otherwise DEFAULT (off)

A context is valid as :mod:`.context` says (an integer key counts as its decimal string).
A *keyless* context (no ``"key"``, or ``None``) takes the same order where the key is not
needed: it is nobody's exclusion and nobody's member, cohort rules still match it, and
only step 8 with a ramp strictly between 0 and 100 % cannot be decided: ERROR /
TARGETING_KEY_MISSING. Every result a flag can give is built once when the flag is
(``Flag.outcomes`` and ``Flag.targets``), so the hot path is dict lookups, set
membership and at most one hash, and never allocates.
"""

from __future__ import annotations

from .bucketing import BUCKETS
from .bucketing import bucket_of
from .context import canonical_context
from .context import is_keyless
from .model import Context
from .model import ErrorCode
from .model import Flag
from .model import Reason
from .model import Result
from .model import Snapshot
from .model import Stage

__all__ = ["FLAG_NOT_FOUND", "GENERAL_ERROR", "evaluate", "evaluate_all"]

FLAG_NOT_FOUND = Result(None, False, Reason.ERROR, error_code=ErrorCode.FLAG_NOT_FOUND)
GENERAL_ERROR = Result(None, False, Reason.ERROR, error_code=ErrorCode.GENERAL)

# Module constants: an enum member read off its class is an attribute lookup through the
# enum's metaclass on every call; a module global is one dictionary read.
_OFF, _GENERAL, _RELEASED = Stage.OFF, Stage.GENERAL, Stage.RELEASED


def evaluate(snapshot: Snapshot, flag_key: str, context: Context) -> Result:
    """Evaluate the flag ``flag_key`` for ``context``; never raises.

    :return: the result; reason ``ERROR`` with ``error_code`` ``GENERAL`` if anything
        unexpected fails (for example a context mapping whose ``get`` raises).
    """
    try:
        flag = snapshot.index.get(flag_key)
        if flag is None:
            return FLAG_NOT_FOUND
        return _decide(flag, context)
    except Exception:  # the contract: evaluation never raises into product code
        return GENERAL_ERROR


def _decide(flag: Flag, context: Context) -> Result:
    outcomes = flag.outcomes
    user_key = context.get("key") if type(context) is dict else None
    if type(user_key) is not str or not user_key or not user_key.isascii():
        canonical = canonical_context(context)  # the rare keys: non-ASCII, integer, invalid
        if canonical is None:
            return _keyless(flag, context) if is_keyless(context) else outcomes.invalid_context
        context, user_key = canonical, str(canonical["key"])
    if flag.killed:
        return outcomes.killed
    if user_key in flag.exclusions:
        return outcomes.excluded
    if flag.stage is _OFF:
        return outcomes.off
    if flag.stage is _RELEASED:
        return outcomes.released
    return _target(flag, user_key, context)


def _target(flag: Flag, user_key: str, context: Context) -> Result:
    for target in flag.targets:
        if user_key in target.members or (
            target.match_rules is not None and target.match_rules(context)
        ):
            return target.result
    if flag.stage is _GENERAL and flag.threshold:
        in_ramp = bucket_of(flag.hash_prefix, user_key) < flag.threshold
        return flag.outcomes.rollout if in_ramp else flag.outcomes.split_out
    return flag.outcomes.not_targeted


def _keyless(flag: Flag, context: Context) -> Result:
    """The decision order without a user key: rules decide cohorts, only a partial ramp
    needs the key."""
    outcomes = flag.outcomes
    if flag.killed:
        return outcomes.killed
    if flag.stage is _OFF:
        return outcomes.off
    if flag.stage is _RELEASED:
        return outcomes.released
    for target in flag.targets:
        if target.match_rules is not None and target.match_rules(context):
            return target.result
    if flag.stage is not _GENERAL or not flag.threshold:
        return outcomes.not_targeted
    return outcomes.rollout if flag.threshold >= BUCKETS else outcomes.key_missing


def evaluate_all(snapshot: Snapshot, context: Context) -> dict[str, Result]:
    """Evaluate every flag of ``snapshot`` for ``context``, in snapshot order; never raises."""
    try:
        flag_keys = tuple(snapshot.index)
    except Exception:  # not a Snapshot: nothing to evaluate
        return {}
    return {flag_key: evaluate(snapshot, flag_key, context) for flag_key in flag_keys}
