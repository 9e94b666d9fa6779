"""A flag's variations and the pointers on and off: replaced whole, audited, gated.

The off variation is what everyone outside the early-access audience gets, so an edit
that changes it (another key, none, or a new value under the same key) is a general
rollout of that value: while the flag's readiness is incomplete and it has a state in a
gated environment, it is refused, like a stage move into ``general``. Retired counts:
it comes back to off or early access without the gate (a rollback), and an off value
changed meanwhile would reach everyone on the way back.
The on variation and the cohorts' variations only reach whom the stage already
reaches, so they are free to edit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.actions import Action
from flagsvc.domain.errors import ConflictError
from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import OffVariationHeldError
from flagsvc.domain.variations import VariationSet
from flagsvc.services import audit
from flagsvc.services import flags
from flagsvc.services.context import Change
from flagsvc.services.context import Precondition
from flagsvc.services.context import no_precondition
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import Environment
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import FlagStateCohort


def set_variations(
    session: Session,
    change: Change,
    flag_key: str,
    candidate: VariationSet,
    precondition: Precondition = no_precondition,
) -> flags.FlagDetail:
    """Replace the flag's variations and both pointers (If-Match checked after the lock).

    :raise InvalidFieldError: the set is invalid, or changes the flag's type.
    :raise ConflictError: a removed variation is still served by a cohort somewhere.
    :raise OffVariationHeldError: the off variation changes while the gate holds.
    """
    flag = flags.get_flag(session, flag_key, lock="update")
    precondition(flags.flag_etag(flags.detail(session, flag)))
    current = flags.variation_set(flag)
    if candidate.value_type is not current.value_type:
        raise InvalidFieldError("value_type", "is fixed when the flag is created")
    wanted = flags.checked(candidate)
    if wanted == current:
        return flags.detail(session, flag)
    _refuse_removing_served(session, flag, set(wanted.keys))
    if wanted.off_value != current.off_value:
        _refuse_while_gate_holds(session, flag)
    before, after = current.as_fields(), wanted.as_fields()
    for name, value in after.items():
        setattr(flag, name, value)
    session.flush()
    audit.record(session, change, Action.FLAG_VARIATIONS_SET, flags.subject(flag), before, after)
    return flags.detail(session, flag)


def _refuse_removing_served(session: Session, flag: Flag, kept: set[str]) -> None:
    rows = session.execute(
        select(Environment.key, Cohort.key, FlagStateCohort.variation)
        .join(FlagState, FlagState.id == FlagStateCohort.flag_state_id)
        .join(Environment, Environment.id == FlagState.environment_id)
        .join(Cohort, Cohort.id == FlagStateCohort.cohort_id)
        .where(FlagState.flag_id == flag.id, FlagStateCohort.variation.is_not(None))
        .order_by(Environment.id, FlagStateCohort.position)
    )
    for environment, cohort, variation in rows:
        if variation not in kept:
            raise ConflictError(
                f"variation {variation!r} is served to cohort {cohort!r} in environment "
                f"{environment!r}; give that cohort another variation first"
            )


def _refuse_while_gate_holds(session: Session, flag: Flag) -> None:
    missing = flags.missing_readiness(flag)
    if not missing:
        return
    held = session.scalar(
        select(Environment.key)
        .join(FlagState, FlagState.environment_id == Environment.id)
        .where(FlagState.flag_id == flag.id, Environment.gated.is_(True))
        .order_by(Environment.id)
        .limit(1)
    )
    if held is not None:
        raise OffVariationHeldError(flag.key, held, missing)
