"""What the audit events since a build say it must re-read."""

from __future__ import annotations

import re
from pathlib import Path

import flagsvc
from flagsvc.delivery.parts.events import UNSEEN
from flagsvc.delivery.parts.events import touched

SUBJECT = re.compile(r'Subject\(\s*"([a-z_]+)"')


def test_unknown_event_kind__full_build() -> None:
    class Row:
        entity_type, entity_key, flag_key, environment = "gadget", "g", None, None

    assert touched([Row()], "production").everything


def test_every_audited_entity__placed_or_known_unseen() -> None:
    """A new kind of audit subject must be placed here (or it costs a full build each time)."""
    sources = Path(flagsvc.__file__).parent.rglob("*.py")
    kinds = {
        match for path in sources for match in SUBJECT.findall(path.read_text(encoding="utf-8"))
    }
    placed = {"flag", "cohort", "readiness", "readiness_item"}  # flag_key or cohort events
    assert {"flag", "cohort", "webhook"} <= kinds  # the scan finds them
    assert kinds - placed - UNSEEN == set()
