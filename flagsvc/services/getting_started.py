"""How far an install has come along the staged-release story, for its first-run guide.

A new install is empty: the guide in the UI names the next step (an objective and key
result, a flag serving it, early adopters, early access, readiness, rollout, an SDK key)
and ticks the ones already taken. Each step is one indexed ``EXISTS`` query, so the
guide costs the same on a database of ten flags or ten thousand.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session

from flagsvc.domain.stages import Stage
from flagsvc.storage.models import Cohort
from flagsvc.storage.models import Flag
from flagsvc.storage.models import FlagState
from flagsvc.storage.models import KeyResult
from flagsvc.storage.models import SdkKey


@dataclass(frozen=True, slots=True)
class Progress:
    """Which steps of the story an install has taken at least once."""

    key_result: bool
    flag: bool
    cohort: bool
    early_access: bool
    ready: bool
    general: bool
    sdk_key: bool

    @property
    def started(self) -> bool:
        """Anything to look at yet (a flag exists)."""
        return self.flag

    @property
    def complete(self) -> bool:
        """Every step taken: the guide has nothing left to say."""
        return all(
            (self.key_result, self.flag, self.cohort, self.early_access, self.ready,
             self.general, self.sdk_key)
        )  # fmt: skip


def progress(session: Session) -> Progress:
    """Read the install's progress (seven ``EXISTS`` lookups)."""

    def any_row(condition: ColumnElement[bool]) -> bool:
        return bool(session.scalar(select(condition)))

    reached = (Stage.EARLY_ACCESS.value, Stage.GENERAL.value, Stage.RELEASED.value)
    wide = (Stage.GENERAL.value, Stage.RELEASED.value)
    return Progress(
        key_result=any_row(exists().where(KeyResult.id.is_not(None))),
        flag=any_row(exists().where(Flag.id.is_not(None))),
        cohort=any_row(exists().where(Cohort.id.is_not(None))),
        early_access=any_row(exists().where(FlagState.stage.in_(reached))),
        ready=any_row(exists().where(Flag.ready_at.is_not(None))),
        general=any_row(exists().where(FlagState.stage.in_(wide))),
        sdk_key=any_row(exists().where(SdkKey.revoked_at.is_(None))),
    )
