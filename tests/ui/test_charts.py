"""Server-drawn charts (issue 15 item 5): readable labels, grids, colours, empty states."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from flagsvc.ui import charts

START = datetime(2026, 12, 2, 19, 32, tzinfo=UTC)


def _labels(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def test_timeline__new_flag__an_hour_of_axis_and_no_repeated_labels():
    row = charts.TimelineRow(
        "production", [charts.Segment("off", START, START + timedelta(seconds=20), "off")]
    )
    svg = str(charts.timeline_chart("T", "D", [row], START, START + timedelta(seconds=20)))
    times = [label for label in _labels(svg) if re.fullmatch(r"\d\d:\d\d", label)]
    assert times == ["19:32", "19:44", "19:56", "20:08", "20:20", "20:32"]
    assert len(times) == len(set(times))


def test_timeline__a_minute_span_keeps_labels_distinct():
    labels = charts._time_axis(START, START + timedelta(minutes=2), lambda at: 0.0, 100)
    shown = _labels(labels)
    assert len(shown) == len(set(shown))


@pytest.mark.parametrize(("top", "ticks"), [(7, [0, 2, 4, 6, 8]), (1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
                                            (33, [0, 10, 20, 30, 40]), (0.3, [0, 0.1, 0.2, 0.3])])  # fmt: skip
def test_nice_ticks__round_steps_past_the_top(top, ticks):
    assert charts.nice_ticks(top) == ticks


def test_column_chart__grid_lines_at_every_tick():
    columns = [charts.Bar(f"W{n}", float(n)) for n in range(8)]
    svg = str(charts.column_chart("Load", "D", columns, "flags"))
    assert [label for label in _labels(svg) if label.isdigit()][:5] == ["0", "2", "4", "6", "8"]
    assert svg.count(f'stroke="{charts.GRID}"') == 4  # 2, 4, 6, 8 (0 is the axis)


@pytest.mark.parametrize(
    "drawn",
    [
        lambda: charts.column_chart("Load", "D", [charts.Bar("W1", 0.0)], "flags"),
        lambda: charts.bar_chart("Dwell", "D", [charts.Bar("off", 0.0)], "days"),
        lambda: charts.stacked_chart("Time", "D", [], "days"),
        lambda: charts.timeline_chart("T", "D", [], START, START),
    ],
)
def test_empty_charts__say_so_instead_of_empty_axes(drawn):
    shown = str(drawn())
    assert "<svg" not in shown and 'class="empty chart-empty"' in shown


def test_bar_chart__bars_keep_their_own_colours():
    bars = [charts.Bar("feature", 60, colour=charts.ITEM_COLOURS["feature"]),
            charts.Bar("defect", 40, colour=charts.ITEM_COLOURS["defect"])]  # fmt: skip
    svg = str(charts.bar_chart("Distribution", "D", bars, "%"))
    assert charts.ITEM_COLOURS["feature"] in svg and charts.ITEM_COLOURS["defect"] in svg


def test_chart__scrolls_in_a_focusable_box_named_like_it():
    svg = str(charts.bar_chart("Dwell", "D", [charts.Bar("off", 1.0)], "days"))
    assert svg.startswith('<div class="chart-scroll" tabindex="0" role="group" aria-label="Dwell">')
