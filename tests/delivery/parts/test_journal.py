"""Bulk member changes resolved from the member journal, or their cohort read whole."""

from __future__ import annotations

from typing import Any

import pytest

from flagsvc.delivery.parts import journal
from flagsvc.delivery.parts.events import Dirty
from flagsvc.delivery.parts.events import Journalled

NO_SESSION: Any = None  # nothing is read when nothing is worth reading


def test_resolved__more_than_a_share_of_the_cohort__read_whole_unread() -> None:
    dirty = Dirty(members={"c": ((True, ("a",)), Journalled(True, 7, 30))})
    resolved = journal.resolved(NO_SESSION, dirty, {"c": 100})
    assert resolved.cohorts == {"c"} and resolved.members == {}


def test_resolved__a_cohort_not_held__read_whole() -> None:
    dirty = Dirty(members={"c": (Journalled(False, 7, 30),)})
    assert journal.resolved(NO_SESSION, dirty, {}).cohorts == {"c"}


def test_resolved__nothing_journalled__unchanged() -> None:
    dirty = Dirty(members={"c": ((True, ("a",)),)})
    assert journal.resolved(NO_SESSION, dirty, {"c": 1}) is dirty


def test_named__a_journalled_change_left__refused() -> None:
    with pytest.raises(ValueError, match="unresolved"):
        journal.named((Journalled(True, 7, 30),))
