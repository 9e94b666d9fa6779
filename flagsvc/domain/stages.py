"""The per-environment release stage machine.

::

    off ──► early_access ──► general (ramp 0–100 %) ──► released ──► retired
     ▲            │                 │                      │
     └────────────┴──── rollback / kill switch ────────────┘

Moving forward may skip stages; any stage may be retired (abandoned work is archived
too); moving back is a rollback and is never gated. In a gated environment every move
that widens general exposure needs complete readiness: entering ``general`` or
``released`` from any stage below them in exposure (``off``, ``early_access`` and
``retired`` alike), general -> released, or raising the ramp.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN
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


FULL_ROLLOUT_BASIS_POINTS = 10_000
FULL_ROLLOUT_PERCENT = Decimal(100)


def to_basis_points(percent: Decimal) -> int:
    """A ramp as stored: hundredths of a percent, an integer, so 0.29 % is 29 exactly
    (``int(0.29 * 100)`` in floats is 28)."""
    return int((percent * 100).to_integral_value(rounding=ROUND_HALF_EVEN))


def to_percent(basis_points: int) -> Decimal:
    """A stored ramp as the percentage people and the API speak in."""
    return Decimal(basis_points) / 100


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
    """Tell whether ``target`` reaches more of the general population than ``current``.

    Compares general exposure, not stage order: ``retired`` ranks above ``released``
    but exposes nobody (it is gone from snapshots), so retired -> released is entering
    general exposure like early_access -> released, never a rollback.
    """
    wider = general_exposure(target)
    return wider is not None and wider > (general_exposure(current) or (0, Decimal(0)))


def general_exposure(position: StagePosition) -> tuple[int, Decimal] | None:
    """How much of the general population a position reaches, as a comparable key.

    ``None`` outside general and released (off, early access, retired: cohorts at
    most); general at p % is ``(1, p)``; released is ``(2, 100)``, above any ramp
    (even general 100 %), so entering released is always a widening.
    """
    if position.stage is Stage.GENERAL:
        return (1, position.rollout_percent)
    if position.stage is Stage.RELEASED:
        return (2, Decimal(100))
    return None


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
    if not Decimal(0) <= percent <= FULL_ROLLOUT_PERCENT:
        raise InvalidFieldError("rollout_percent", "must be between 0 and 100")
    return percent
