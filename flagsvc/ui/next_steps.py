"""What an environment's card on the flag page offers: only the valid next steps, in story order.

Each step is checked with the service's ``check_move`` (the domain's ``plan_move`` on
the same state the POST would meet), so a move the readiness gate refuses is shown
disabled with the reason before anyone clicks, and a move that changes nothing is not
shown at all. Forward steps come in the order of the story (early access, general
rollout ramped up, release); rollbacks are offered apart, under "Roll back", and the
kill switch only where the flag reaches someone.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from flagsvc.domain.errors import ReadinessRequiredError
from flagsvc.domain.stages import Stage
from flagsvc.services.flag_states import FlagStateDetail
from flagsvc.services.flag_states import check_move

_StepMaker = Callable[..., "Step"]  # plan()'s inner step(label, stage, ramp=None, confirm=None)
RAMP_STEPS = (Decimal(10), Decimal(25), Decimal(50), Decimal(100))
NO_COHORT = "No early-access cohort is chosen here: early access would reach nobody. Start anyway?"
RETIRE = "Retire the flag here? SDKs will answer the default their code passes."
REACHES_SOMEONE = frozenset({Stage.EARLY_ACCESS, Stage.GENERAL, Stage.RELEASED})


@dataclass(frozen=True, slots=True)
class Step:
    """One button: its words, the move it posts, and why the gate refuses it (if it does)."""

    label: str
    stage: Stage
    percent: Decimal | None = None
    refused: str | None = None
    confirm: str | None = None
    spoken: str = ""  # the words a screen reader says, when the label alone is too short

    @property
    def percent_text(self) -> str:
        """The ramp as the form posts it (empty: no ramp)."""
        return "" if self.percent is None else f"{self.percent:g}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything an environment's card offers, grouped as the page shows it."""

    summary: str
    forward: list[Step]
    ramp_label: str
    ramp: list[Step]
    custom_ramp: bool
    back: list[Step]
    retire: Step | None
    kill_switch: bool
    waits_for: str | None


def plan(detail: FlagStateDetail, labels: Mapping[str, str]) -> Plan:
    """The card's steps for ``detail``; ``labels`` names readiness items."""
    stage = Stage(detail.state.stage)
    percent = Decimal(str(detail.rollout_percent))

    def step(
        label: str, to: Stage, ramp: Decimal | None = None, confirm: str | None = None,
        spoken: str = "",
    ) -> Step:  # fmt: skip
        error = check_move(detail, to, ramp)
        if error is not None and not isinstance(error, ReadinessRequiredError):
            return Step("", to)  # changes nothing: not offered
        refused = _waiting(error, labels) if error else None
        return Step(label, to, ramp, refused, confirm, spoken or label)

    ramp_label = "Ramp up to" if stage is Stage.GENERAL else "Start general rollout at"
    ramp = [
        step(f"{p:g} %", Stage.GENERAL, p, spoken=f"{ramp_label} {p:g} %")
        for p in RAMP_STEPS
        if _ramps_up(stage, percent, p)
    ]
    return Plan(
        summary=_summary(stage, percent, detail),
        forward=[s for s in _forward(stage, detail, step) if s.label],
        ramp_label=ramp_label,
        ramp=[s for s in ramp if s.label],
        custom_ramp=stage in (Stage.OFF, Stage.EARLY_ACCESS, Stage.GENERAL),
        back=[s for s in _back(stage, step) if s.label],
        retire=None if stage is Stage.RETIRED else step("Retire", Stage.RETIRED, confirm=RETIRE),
        kill_switch=stage in REACHES_SOMEONE,
        waits_for=_waits_for(detail, labels),
    )


def _ramps_up(stage: Stage, current: Decimal, step: Decimal) -> bool:
    """Ramp buttons go up only (lower with "Other percentage" or a rollback)."""
    if stage is Stage.GENERAL:
        return step > current
    return stage in (Stage.OFF, Stage.EARLY_ACCESS)


def _forward(stage: Stage, detail: FlagStateDetail, step: _StepMaker) -> list[Step]:
    steps = []
    if stage in (Stage.OFF, Stage.RETIRED):
        nobody = None if detail.cohorts else NO_COHORT
        steps.append(step("Start early access", Stage.EARLY_ACCESS, confirm=nobody))
    if stage in (Stage.EARLY_ACCESS, Stage.GENERAL):
        steps.append(step("Release to everyone", Stage.RELEASED))
    return steps


def _back(stage: Stage, step: _StepMaker) -> list[Step]:
    steps = []
    if stage is Stage.RELEASED:
        steps.append(step("Back to general rollout at 100 %", Stage.GENERAL, Decimal(100)))
    if stage in (Stage.GENERAL, Stage.RELEASED):
        steps.append(step("Back to early access (cohorts only)", Stage.EARLY_ACCESS))
    if stage in (Stage.EARLY_ACCESS, Stage.GENERAL, Stage.RELEASED, Stage.RETIRED):
        steps.append(step("Turn off (dark)", Stage.OFF))
    return steps


def _summary(stage: Stage, percent: Decimal, detail: FlagStateDetail) -> str:
    """What the stage means for the people using the product, in one sentence."""
    if detail.state.killed:
        return "Killed: off for everyone until resumed, whatever the stage says."
    cohorts = len(detail.cohorts)
    who = f"its {cohorts} early-access cohort{'' if cohorts == 1 else 's'}" if cohorts else "nobody"
    if stage is Stage.OFF:
        return "Off: deployed dark, on for nobody."
    if stage is Stage.EARLY_ACCESS:
        return f"Early access: on for {who}, off for everyone else."
    if stage is Stage.GENERAL and percent >= 100:
        return (
            "General rollout at 100 %: on for everyone, still as a ramp. Release it to say the "
            "work is done (flow metrics count it as shipped then)."
        )
    if stage is Stage.GENERAL:
        return f"General rollout at {percent:g} %: on for {who} and {percent:g} % of everyone else."
    if stage is Stage.RELEASED:
        return "Released: on for everyone, the work is done. Remove the flag from code next."
    return "Retired: gone from SDK snapshots; code gets the default it passes."


def _waiting(error: ReadinessRequiredError, labels: Mapping[str, str]) -> str:
    return "Waits for launch readiness: " + ", ".join(labels.get(k, k) for k in error.missing)


def _waits_for(detail: FlagStateDetail, labels: Mapping[str, str]) -> str | None:
    """Why general rollout cannot start here yet (gated, readiness missing), or None."""
    if not detail.state.environment.gated or not detail.missing_readiness:
        return None
    return ", ".join(labels.get(key, key) for key in detail.missing_readiness)
