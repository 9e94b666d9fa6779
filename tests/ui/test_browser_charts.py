"""Charts in a real browser (issue 15 item 5): a new flag's timeline is wide with distinct
time labels, chart text stays readable at 390 px (the chart scrolls in its box), and the
release-timing page on the demo's quarter draws sorted, gridded, coloured charts.
"""

from __future__ import annotations

from tests.ui.browser import api_post

TEXT_SIZES = """(sel) => Array.from(document.querySelectorAll(sel + ' svg text'))
  .map(t => t.getBoundingClientRect().height).filter(h => h > 0)"""


def test_new_flag_timeline__wide_with_distinct_labels(people, service):
    token = service.tokens["engineer"]
    made = api_post(service.url, token, "/api/v1/objectives",
                    {"title": "Charts", "period": "2026-Q4", "owner": "ui"})  # fmt: skip
    kr = api_post(service.url, token, f"/api/v1/objectives/{made['id']}/key-results",
                  {"title": "Readable", "metric": "m", "baseline": 0, "target": 1})  # fmt: skip
    api_post(service.url, token, "/api/v1/flags", {"key": "fresh-chart", "name": "Fresh chart",
             "flow_item": "feature", "key_result_id": kr["id"]})  # fmt: skip
    engineer = people("engineer")
    engineer.go("/ui/flags/fresh-chart")
    page = engineer.page
    timeline = page.locator("section[aria-labelledby=timeline-title] svg")
    box = timeline.bounding_box()
    assert box is not None, page.locator("section[aria-labelledby=timeline-title]").inner_html()[
        :3000
    ]
    assert box["width"] > 900
    labels = timeline.locator("text").all_text_contents()
    times = [label for label in labels if ":" in label]
    assert len(times) == len(set(times)) >= 2
    page.set_viewport_size({"width": 390, "height": 900})
    sizes = page.evaluate(TEXT_SIZES, "section[aria-labelledby=timeline-title]")
    assert sizes and min(sizes) >= 9, sizes  # about 10 px text, not 5
    engineer.inspect("chart-new-flag-timeline")


def test_release_timing_on_the_demo__readable_at_390(people, demo):
    leader = people("viewer", site=demo)
    leader.go("/ui/timing")
    page = leader.page
    page.set_viewport_size({"width": 390, "height": 900})
    sizes = page.evaluate(TEXT_SIZES, "main")
    assert sizes and min(sizes) >= 9, min(sizes)
    load = page.locator("section[aria-labelledby=load-title] svg")
    grid = load.locator("line").count()
    assert grid >= 3  # round-valued grid lines, not only 0 and the maximum
    leader.inspect("chart-release-timing")
