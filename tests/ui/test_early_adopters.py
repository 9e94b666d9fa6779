"""The flag page shows early-adopter evidence per environment, from what the SDKs report."""

from __future__ import annotations

import pytest

from tests.api.test_early_adopters import build_with_adopters
from tests.ui.conftest import html


@pytest.fixture
def history(engineer, marketing, clock, sdk):
    return build_with_adopters(engineer, marketing, clock, sdk)


def test_flag_page__evidence_per_environment(history, ui_viewer):
    page = html(ui_viewer.get("/ui/flags/flag-c"))
    assert "Early adopters seen" in page and "hashed user keys" in page
    assert "<td>40</td><td>60</td><td>20</td>" in page  # seen, early access, other


def test_flag_page__no_reports__says_so(history, ui_viewer):
    assert "No SDK has reported evaluating this flag yet" in html(ui_viewer.get("/ui/flags/flag-a"))
