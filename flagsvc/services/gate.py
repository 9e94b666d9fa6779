"""The readiness gate on the paths around stage moves: cohorts and readiness itself.

The invariant (``docs/product.md``): in a gated environment, a flag's exposure may
widen only while its readiness is complete, so while readiness is incomplete nobody
outside the early-access audience (members, opt-in enrolees, bounded rules) gets it.
``domain/stages`` guards the moves; this module refuses the other ways in:

- attaching a catch-all cohort (``domain/catch_all``) to a flag in a gated
  environment before its readiness is complete;
- editing a cohort's rules into a catch-all while such a flag uses it;
- moving to early access, or resuming, with a catch-all attached there (only data
  written before these checks existed can hold one);
- readiness becoming incomplete (an item unmarked, a required item added) while the
  flag is in general rollout or released in a gated environment, or has a catch-all
  cohort attached there.

Locks: a rule edit holds the cohort ``FOR NO KEY UPDATE``; the paths that rely on a
cohort being bounded read it ``FOR SHARE`` after locking the flag, so a rule edit and
an attachment or a readiness loss racing each other are serialised and the later one
sees the earlier one's result.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.catch_all import catch_all_reason
from flagsvc.domain.errors import GateError
from flagsvc.domain.stages import GENERAL_EXPOSURE
from flagsvc.domain.stages import Stage
from flagsvc.services import flags
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort

NAMED = 5
"""Flag / environment pairs an error names; it counts the rest."""


def held(state: FlagState, missing: Sequence[str]) -> bool:
    """Whether the gate holds for this state: a gated environment, readiness incomplete."""
    return state.environment.gated and bool(missing)


def locked_cohorts(session: Session, cohort_keys: Iterable[str]) -> list[Cohort]:
    """The named cohorts ``FOR SHARE``: their rules cannot change until this commits."""
    stmt = select(Cohort).where(Cohort.key.in_(list(cohort_keys))).order_by(Cohort.id)
    return list(session.scalars(stmt.with_for_update(read=True)))


def refuse_catch_all_attached(
    flag_key: str, environment: str, cohorts: Iterable[Cohort], missing: Sequence[str]
) -> None:
    """Refuse early-access cohorts that are catch-alls while the gate holds.

    :raise GateError: naming the first catch-all cohort and why it is one.
    """
    for cohort in cohorts:
        reason = catch_all_reason(cohort.rules)
        if reason:
            raise GateError(
                f"cohort {cohort.key!r} is a catch-all ({reason}); it cannot be an "
                f"early-access cohort of flag {flag_key!r} in gated environment "
                f"{environment!r} before readiness is complete (not done: "
                f"{', '.join(missing)})",
                missing,
            )


def attached_cohorts(session: Session, state: FlagState) -> list[Cohort]:
    """The state's early-access cohorts, locked ``FOR SHARE``."""
    keys = (
        select(Cohort.key)
        .join(FlagStateCohort, FlagStateCohort.cohort_id == Cohort.id)
        .where(FlagStateCohort.flag_state_id == state.id)
    )
    return locked_cohorts(session, session.scalars(keys))


def refuse_catch_all_rules(
    session: Session, cohort: Cohort, rules: Sequence[Mapping[str, Any]]
) -> None:
    """Refuse new rules that make ``cohort`` a catch-all while a held flag uses it.

    The caller holds the cohort's row lock, so no attachment or readiness loss that
    relied on the old rules is still in flight.

    :raise GateError: naming the reason and the flags and environments concerned.
    """
    reason = catch_all_reason(rules)
    if not reason:
        return
    uses = _held_uses(session, cohort.id)
    if uses:
        named = ", ".join(f"{flag} in {env}" for flag, env in uses[:NAMED])
        more = f" and {len(uses) - NAMED} more" if len(uses) > NAMED else ""
        raise GateError(
            f"these rules would make cohort {cohort.key!r} a catch-all ({reason}), and it "
            f"is an early-access cohort in gated environments whose flag is not ready: "
            f"{named}{more}. Complete their readiness, or take the cohort off there first."
        )


def refuse_readiness_loss(session: Session, flag: Flag, missing: Sequence[str]) -> None:
    """Refuse making ``flag`` not ready while that would open a path around the gate.

    That is when, in some gated environment, it is in general rollout or released
    (killed or not: resuming would expose everyone), or a catch-all cohort is attached.

    :raise GateError: naming the environment and what to do first.
    """
    stmt = (
        select(FlagState)
        .join(Environment, Environment.id == FlagState.environment_id)
        .where(FlagState.flag_id == flag.id, Environment.gated.is_(True))
        .order_by(Environment.id)
    )
    for state in session.scalars(stmt):
        environment = state.environment.key
        if Stage(state.stage) in GENERAL_EXPOSURE:
            raise GateError(
                f"flag {flag.key!r} is {_exposure(state)} in gated environment "
                f"{environment!r}: its readiness cannot become incomplete while general "
                f"rollout lasts (not done would be: {', '.join(missing)}). Roll back to "
                "early_access there first; an item's note can change without unmarking it.",
                missing,
            )
        refuse_catch_all_attached(flag.key, environment, attached_cohorts(session, state), missing)


def _exposure(state: FlagState) -> str:
    if state.stage == Stage.GENERAL.value:
        return f"in general rollout at {flags.percent(state):g} %"
    return state.stage


def _held_uses(session: Session, cohort_id: int) -> list[tuple[str, str]]:
    """(flag, environment) where the cohort is attached, gated, and the flag not ready."""
    stmt = (
        select(Flag, Environment.key)
        .select_from(FlagStateCohort)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .join(Flag, Flag.id == FlagState.flag_id)
        .join(Environment, Environment.id == FlagState.environment_id)
        .where(FlagStateCohort.cohort_id == cohort_id, Environment.gated.is_(True))
        .order_by(Flag.key, Environment.id)
    )
    return [(flag.key, env) for flag, env in session.execute(stmt) if flags.missing_readiness(flag)]
