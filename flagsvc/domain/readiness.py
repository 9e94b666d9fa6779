"""The launch-readiness checklist that holds general rollout in gated environments."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One readiness item as marketing / customer success sees it."""

    key: str
    label: str
    required: bool
    done: bool


DEFAULT_ITEMS: tuple[tuple[str, str], ...] = (
    ("docs", "Documentation published"),
    ("announcement", "Announcement ready"),
    ("support_enablement", "Support team enabled"),
    ("sales_briefing", "Sales briefed"),
)


def missing_items(items: Iterable[ChecklistItem]) -> list[str]:
    """Return the keys of required items not yet done, in checklist order."""
    return [item.key for item in items if item.required and not item.done]


def is_ready(items: Iterable[ChecklistItem]) -> bool:
    """A flag is ready when every required item is done (an empty checklist is ready)."""
    return not missing_items(items)
