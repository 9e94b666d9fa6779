"""Readiness rules: what is missing and when a flag is ready."""

from __future__ import annotations

import pytest

from flagsvc.domain.readiness import DEFAULT_ITEMS
from flagsvc.domain.readiness import ChecklistItem
from flagsvc.domain.readiness import is_ready
from flagsvc.domain.readiness import missing_items
from flagsvc.domain.validation import RESOURCE_KEY


def item(key: str, *, required: bool = True, done: bool = False) -> ChecklistItem:
    return ChecklistItem(key, key.title(), required, done)


@pytest.mark.parametrize(
    ("items", "missing"),
    [
        ([], []),
        ([item("docs"), item("faq")], ["docs", "faq"]),
        ([item("docs", done=True), item("faq")], ["faq"]),
        ([item("docs", required=False), item("faq", done=True)], []),
        ([item("b"), item("a"), item("c", done=True)], ["b", "a"]),  # checklist order kept
    ],
)
def test_missing_items__checklist__required_open_items_in_order(items, missing):
    assert missing_items(items) == missing


@pytest.mark.parametrize(
    ("items", "ready"),
    [
        ([], True),
        ([item("docs", done=True)], True),
        ([item("docs", done=True), item("webinar", required=False)], True),
        ([item("docs", done=True), item("faq")], False),
    ],
)
def test_is_ready__checklist__true_only_when_nothing_required_is_open(items, ready):
    assert is_ready(items) is ready


def test_default_items__four_with_valid_unique_keys():
    keys = [key for key, _ in DEFAULT_ITEMS]
    assert keys == ["docs", "announcement", "support_enablement", "sales_briefing"]
    assert all(RESOURCE_KEY.match(key) for key in keys) and len(set(keys)) == 4
