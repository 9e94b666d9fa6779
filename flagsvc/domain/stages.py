"""The per-environment release stage machine.

::

    off ──► early_access ──► general (ramp 0–100 %) ──► released ──► retired
     ▲            │                 │                      │
     └────────────┴──── rollback / kill switch ────────────┘

Moving forward may skip stages; any stage may be retired (abandoned work is archived
too); moving back is a rollback and is never gated. In a gated environment every move
that widens general exposure (entering ``general`` or ``released``, or raising the
ramp) needs complete readiness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from flagsvc.domain.errors import InvalidFieldError
from flagsvc.domain.errors import InvalidTransitionError
from flagsvc.domain.errors import ReadinessRequiredError


class Stage(StrEnum):
    """Release stages in their forward order."""

    OFF = "off"
    EARLY_ACCESS = "early_access"
    GENERAL = "general"
    RELEASED = "released"
    RETIRED = "retired"

    @property
    def rank(self) -> int:
        """Position in the forward order, for comparing stages."""
        return _ORDER.index(self)


_ORDER: tuple[Stage, ...] = tuple(Stage)
GENERAL_EXPOSURE = frozenset({Stage.GENERAL, Stage.RELEASED})


@dataclass(frozen=True, slots=True)
class StagePosition:
    """Where a flag stands in one environment."""

    stage: Stage
    rollout_percent: Decimal


@dataclass(frozen=True, slots=True)
class Gate:
    """What the stage machine needs to know about the flag and the environment."""

    flag_key: str
    environment: str
    gated: bool
    missing_readiness: Sequence[str]


def plan_move(
    current: StagePosition, stage: Stage, percent: Decimal | None, gate: Gate
) -> StagePosition:
    """Check a requested move and return the position it leads to.

    :raise InvalidFieldError: ``rollout_percent`` given for a stage other than general.
    :raise InvalidTransitionError: the move changes nothing.
    :raise ReadinessRequiredError: the move widens general exposure in a gated
        environment before readiness is complete.
    """
    target = StagePosition(stage, _target_percent(current, stage, percent))
    if target == current:
        raise InvalidTransitionError(
            f"flag {gate.flag_key!r} is already {stage.value} in {gate.environment!r}"
        )
    if gate.gated and gate.missing_readiness and widens_exposure(current, target):
        raise ReadinessRequiredError(gate.flag_key, gate.environment, gate.missing_readiness)
    return target


def widens_exposure(current: StagePosition, target: StagePosition) -> bool:
    """Tell whether ``target`` reaches more of the general population than ``current``."""
    if target.stage not in GENERAL_EXPOSURE:
        return False
    if target.stage.rank != current.stage.rank:
        return target.stage.rank > current.stage.rank
    return target.stage is Stage.GENERAL and target.rollout_percent > current.rollout_percent


def is_rollback(current: StagePosition, target: StagePosition) -> bool:
    """Tell whether the move goes back down the stage order (or lowers the ramp)."""
    if target.stage.rank != current.stage.rank:
        return target.stage.rank < current.stage.rank
    return target.rollout_percent < current.rollout_percent


def _target_percent(current: StagePosition, stage: Stage, percent: Decimal | None) -> Decimal:
    """Keep the ramp where it was unless the caller sets it; only general has one."""
    if percent is not None and stage is not Stage.GENERAL:
        raise InvalidFieldError(
            "rollout_percent", "only the general stage has a rollout percentage"
        )
    if percent is None:
        stays_general = current.stage is Stage.GENERAL and stage is Stage.GENERAL
        return current.rollout_percent if stays_general else Decimal(0)
    if not Decimal(0) <= percent <= Decimal(100):
        raise InvalidFieldError("rollout_percent", "must be between 0 and 100")
    return percent
