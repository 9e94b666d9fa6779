"""Release timing pages: the flag timeline, flow metrics with the bottleneck, objective view."""

from __future__ import annotations

import re

import pytest

from tests.ui.conftest import html

ITEMS = ("docs", "announcement", "support_enablement", "sales_briefing")


def _ship(ui_engineer, ui_marketing, clock, key_result, key="one-click"):
    """A flag that waited four days for readiness in early access, then shipped."""
    ui_engineer.post("/ui/flags", {"key": key, "name": "One click", "flow_item": "feature",
                                   "key_result_id": str(key_result)})  # fmt: skip
    clock.advance(days=2)
    ui_engineer.post(f"/ui/flags/{key}/environments/production/stage", {"stage": "early_access"})
    clock.advance(days=4)
    for item in ITEMS:
        ui_marketing.post(f"/ui/flags/{key}/readiness/{item}", {"done": "true"})
    clock.advance(days=1)
    ui_engineer.post(
        f"/ui/flags/{key}/environments/production/stage",
        {"stage": "general", "rollout_percent": "50"},
    )
    clock.advance(days=1)
    ui_engineer.post(f"/ui/flags/{key}/environments/production/kill")
    clock.advance(hours=12)
    ui_engineer.post(f"/ui/flags/{key}/environments/production/resume")
    ui_engineer.post(f"/ui/flags/{key}/environments/production/stage", {"stage": "released"})
    clock.advance(days=1)
    return key


@pytest.fixture
def history(ui_engineer, ui_marketing, clock, key_result):
    return _ship(ui_engineer, ui_marketing, clock, key_result)


@pytest.fixture
def three(ui_engineer, ui_marketing, clock, key_result):
    """Three flags shipped the same way: enough to name a bottleneck."""
    return [_ship(ui_engineer, ui_marketing, clock, key_result, k) for k in ("a-1", "a-2", "a-3")]


def _svgs(page):
    return re.findall(r"<svg[^>]*role=\"img\"[^>]*aria-labelledby=\"([^\"]+)\"", page)


def test_flag_page__timeline_chart_and_table(ui_viewer, history):
    page = html(ui_viewer.get("/ui/flags/one-click"))
    assert _svgs(page), "an accessible SVG chart"
    assert "<title id=" in page and "<desc id=" in page
    assert "Release timeline of one-click" in page
    assert "early access" in page and "general rollout at 50%" in page and "5.0 days" in page
    assert "killed by engineer-token" in page  # the kill-switch marker's tooltip


def test_flow__bottleneck_named_with_charts_and_tables(ui_viewer, three):
    page = html(ui_viewer.get("/ui/timing?environment=production"))
    assert "Releases spend longest in" in page and "early access" in page
    assert len(_svgs(page)) >= 5  # dwell, time, load, velocity, distribution
    for caption in ("Median days per flag in each stage", "Days per flag", "Kinds of work"):
        assert caption in page
    assert "readiness wait" in page and "/ui/flags/a-1" in page
    assert "style=" not in page


def test_flow__one_flag__too_few_to_name_a_bottleneck(ui_viewer, history):
    page = html(ui_viewer.get("/ui/timing?environment=production"))
    assert "Releases spend longest in" not in page and "(bottleneck)" not in page
    assert "Too few flags to name one: 1 in scope, and a bottleneck needs at least 3." in page


def test_flow__nothing_yet__charts_say_so_not_empty_axes(ui_viewer, key_result):
    page = html(ui_viewer.get("/ui/timing?environment=production"))
    assert "no data in this period yet." in page or "nothing in this period yet" in page
    assert not _svgs(page)


def test_flow__objective__shows_its_timeline(ui_viewer, engineer, history):
    objective_id = engineer.get("/api/v1/objectives").json["items"][0]["id"]
    page = html(ui_viewer.get(f"/ui/timing?objective={objective_id}"))
    assert "Timeline of Faster checkout" in page and "Stages per flag in production" in page


def test_flow__other_environment__measured_there(ui_viewer, history):
    page = html(ui_viewer.get("/ui/timing?environment=staging"))
    assert "No flag was released in this period" in page


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ("since=2026-10-05T00:00&until=2026-10-01T00:00", "until", "Must be later than since"),
        ("environment=nowhere", "environment", "does not exist"),
        ("objective=999", "objective", "does not exist"),
        ("since=2020-01-01T00:00", "since", "at most 731 days"),
        ("objective=abc", "objective", "Enter a whole number."),
    ],
)
def test_flow__bad_filters__422_next_to_the_field(ui_viewer, history, query, field, reason):
    response = ui_viewer.get(f"/ui/timing?{query}")
    assert response.status_code == 422
    page = html(response)
    assert f'id="flow-{field}-error"' in page and reason in page


def test_readiness_board__says_how_long_a_feature_has_waited(
    ui_engineer, ui_marketing, clock, key_result
):
    ui_engineer.post(
        "/ui/flags",
        {"key": "held", "name": "Held", "flow_item": "feature", "key_result_id": str(key_result)},
    )
    ui_engineer.post("/ui/flags/held/environments/production/stage", {"stage": "early_access"})
    clock.advance(days=3)
    assert "3.0 days" in html(ui_marketing.get("/ui/readiness"))
