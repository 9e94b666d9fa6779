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


def test_flag_page__early_access_share_of_the_last_day(history, ui_viewer):
    page = html(ui_viewer.get("/ui/flags/flag-c"))
    assert "Early access answered 75.0 % of the last 24 hours’ evaluations here (60 of 80" in page


@pytest.mark.parametrize("app_config", [{"reach_warning_percent": 50.0}])
def test_flag_page__share_above_the_setting__warns_in_early_access(
    app_config, engineer, marketing, clock, sdk, ui_viewer
):
    build_with_adopters(engineer, marketing, clock, sdk)
    _into_early_access(engineer)
    _report(sdk, clock, evaluations=100, cohort=90)  # enough evaluations to judge a share
    page = html(ui_viewer.get("/ui/flags/flag-c"))
    assert 'id="reach-warning-production"' in page
    assert "more than the 50 % this service warns at" in page


@pytest.mark.parametrize("app_config", [{"reach_warning_percent": 95.0}])
def test_flag_page__share_below_the_setting__no_warning(
    app_config, engineer, marketing, clock, sdk, ui_viewer
):
    build_with_adopters(engineer, marketing, clock, sdk)
    _into_early_access(engineer)
    _report(sdk, clock, evaluations=100, cohort=90)
    assert "reach-warning-" not in html(ui_viewer.get("/ui/flags/flag-c"))


def _into_early_access(engineer):
    state = engineer.get("/api/v1/flags/flag-c/environments/production").json
    if state["stage"] != "early_access":
        moved = engineer.post(
            "/api/v1/flags/flag-c/environments/production/stage",
            json={"stage": "early_access"},
            headers={"If-Match": f'"{state["version"]}"'},
        )
        assert moved.status_code == 200, moved.json


def _report(sdk, clock, evaluations, cohort):
    entry = {
        "flag": "flag-c",
        "count": evaluations,
        "last_evaluated_at": clock().isoformat(),
        "reasons": {"COHORT": cohort},
    }
    assert sdk.post("/sdk/v1/metrics", json={"evaluations": [entry]}).status_code == 202
