"""Charts as inline SVG, drawn on the server: no chart library, no script, no inline style.

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that say what
it shows in words (screen readers announce them), colours come from presentation
attributes (``fill=``), which the page's Content-Security-Policy allows where ``style=``
is refused, and each bar has its own ``<title>`` as a tooltip. The pages put a data
table beside every chart with the same numbers, so nothing is only visible as shape.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from markupsafe import Markup
from markupsafe import escape

WIDTH = 720
LABEL_WIDTH = 165
ROW_HEIGHT = 30
BAR_HEIGHT = 18
AXIS_HEIGHT = 28
TOP = 12  # room above the first row for kill-switch and launch markers
INK = "#1c2430"
MUTED = "#4d5868"
GRID = "#d5dbe3"
STAGE_COLOURS = {
    "off": "#8d96a3",
    "early_access": "#6d3fc4",
    "general": "#2f6fde",
    "released": "#1b7f45",
    "retired": "#a39a8f",
}
PART_COLOURS = {"active": "#2f6fde", "readiness wait": "#c26a00", "blocked": "#b3141b"}
HIGHLIGHT = "#c26a00"
PLAIN = "#2f6fde"
ITEM_COLOURS = {"feature": "#2f6fde", "defect": "#b3141b", "risk": "#c26a00", "debt": "#6d3fc4"}
_ids = itertools.count(1)
Place = Callable[[datetime], float]


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch on a timeline row: a stage from ``start`` to ``end``."""

    stage: str
    start: datetime
    end: datetime
    label: str


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """One row of a timeline chart (a flag, or an environment of one flag)."""

    label: str
    segments: Sequence[Segment]
    markers: Sequence[tuple[datetime, str]] = ()


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label, value and whether it is the one to notice."""

    label: str
    value: float
    highlight: bool = False
    colour: str | None = None


@dataclass(frozen=True, slots=True)
class StackedBar:
    """One bar split into named parts (e.g. active, readiness wait, blocked)."""

    label: str
    parts: Sequence[tuple[str, float]]


def empty(words: str) -> Markup:
    """What a chart without data shows instead of empty axes."""
    return Markup('<p class="empty chart-empty">{}</p>').format(words)


def _svg(title: str, desc: str, height: int, body: str) -> Markup:
    """Wrap ``body`` in an accessible, scalable SVG element, in a box that scrolls
    sideways on a phone (focusable, so the keyboard can scroll it too)."""
    n = next(_ids)
    return Markup(
        f'<div class="chart-scroll" tabindex="0" role="group" aria-label="{escape(title)}">'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="chart-{n}-title chart-{n}-desc" font-family="system-ui, sans-serif" '
        f'font-size="13"><title id="chart-{n}-title">{escape(title)}</title>'
        f'<desc id="chart-{n}-desc">{escape(desc)}</desc>{body}</svg></div>'
    )


def _text(x: float, y: float, content: str, anchor: str = "start", fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">'
        f"{escape(content)}</text>"
    )


def _rect(x: float, y: float, width: float, height: float, fill: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 1.5):.1f}" height="{height:.1f}" '
        f'fill="{fill}" rx="2"><title>{escape(tip)}</title></rect>'
    )


def number(value: float) -> str:
    """A value as a chart labels it: at most one decimal, no trailing ``.0``."""
    if 0 < abs(value) < 0.05:
        return "<0.1"
    return f"{value:.1f}".removesuffix(".0")


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str = GRID) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"/>'


# --- timelines: stages as bars over time ---------------------------------------------


def timeline_chart(
    title: str, desc: str, rows: Sequence[TimelineRow], start: datetime, end: datetime
) -> Markup:
    """Stage bars over a shared time axis, one row per flag or environment."""
    if not rows:
        return empty(f"{title}: nothing to draw yet, no flag has a history here.")
    end = max(end, start + MIN_TIMELINE)
    span = max((end - start).total_seconds(), 1.0)
    plot = WIDTH - LABEL_WIDTH - 10

    def x_of(at: datetime) -> float:
        return LABEL_WIDTH + plot * max(0.0, (at - start).total_seconds()) / span

    bottom = TOP + len(rows) * ROW_HEIGHT
    parts = [_time_axis(start, end, x_of, bottom)]
    for index, row in enumerate(rows):
        parts.append(_timeline_row(row, TOP + index * ROW_HEIGHT, x_of))
    stages = sorted({s.stage for r in rows for s in r.segments}, key=_stage_order)
    parts.append(_legend(stages, bottom + AXIS_HEIGHT))
    return _svg(title, desc, bottom + AXIS_HEIGHT + 26, "".join(parts))


def _stage_order(stage: str) -> int:
    order = list(STAGE_COLOURS)
    return order.index(stage) if stage in order else len(order)


def _timeline_row(row: TimelineRow, top: float, place: Place) -> str:
    parts = [_text(LABEL_WIDTH - 8, top + ROW_HEIGHT / 2 + 4, _clip(row.label), "end")]
    bar_top = top + (ROW_HEIGHT - BAR_HEIGHT) / 2
    for segment in row.segments:
        left, right = place(segment.start), place(segment.end)
        colour = STAGE_COLOURS.get(segment.stage, PLAIN)
        parts.append(_rect(left, bar_top, right - left, BAR_HEIGHT, colour, segment.label))
    for at, tip in row.markers:
        x = place(at)
        parts.append(
            f'<path d="M{x:.1f} {bar_top - 3:.1f} l5 -7 h-10 z" fill="#b3141b">'
            f"<title>{escape(tip)}</title></path>"
        )
    return "".join(parts)


def _clip(label: str, limit: int = 22) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _time_axis(start: datetime, end: datetime, place: Place, bottom: float) -> str:
    """Vertical grid lines with time labels under the rows; a label equal to the one
    before it is left out (a flag minutes old would print one time six times)."""
    fmt = _tick_format(end - start)
    parts, shown = [], None
    for step in range(6):
        at = start + (end - start) * step / 5
        x = place(at)
        parts.append(_line(x, TOP, x, bottom))
        label = at.strftime(fmt)
        if label == shown:
            continue
        anchor = "end" if step == 5 else "start" if step == 0 else "middle"
        parts.append(_text(x, bottom + 16, label, anchor, MUTED))
        shown = label
    return "".join(parts)


def _tick_format(span: timedelta) -> str:
    if span >= timedelta(days=2):
        return "%b %d"
    if span >= timedelta(hours=2):
        return "%d %H:%M"
    return "%H:%M"


MIN_TIMELINE = timedelta(hours=1)  # a new flag's axis still spans an hour: bars stay visible


def _legend(stages: Sequence[str], top: float) -> str:
    parts, x = [], float(LABEL_WIDTH)
    for stage in stages:
        parts.append(f'<rect x="{x:.1f}" y="{top + 6:.1f}" width="12" height="12" '
                     f'fill="{STAGE_COLOURS.get(stage, PLAIN)}" rx="2"/>')  # fmt: skip
        name = stage.replace("_", " ")
        parts.append(_text(x + 16, top + 16, name))
        x += 30 + 7 * len(name)
    return "".join(parts)


# --- bars: one value per label, and bars split into parts ----------------------------


def bar_chart(title: str, desc: str, bars: Sequence[Bar], unit: str) -> Markup:
    """Horizontal bars on a common scale; the highlighted one (the bottleneck) in amber,
    else each in its own colour when the bar says which (``Bar.colour``)."""
    if not any(bar.value > 0 for bar in bars):
        return empty(f"{title}: no data in this period yet.")
    top_value = max((bar.value for bar in bars), default=0.0) or 1.0
    plot = WIDTH - LABEL_WIDTH - 90
    parts = []
    for index, bar in enumerate(bars):
        y = index * ROW_HEIGHT
        width = plot * bar.value / top_value
        colour = HIGHLIGHT if bar.highlight else bar.colour or PLAIN
        shown = f"{number(bar.value)} {unit}".strip()
        parts.append(_text(LABEL_WIDTH - 8, y + ROW_HEIGHT / 2 + 4, _clip(bar.label), "end"))
        parts.append(_rect(LABEL_WIDTH, y + 6, width, BAR_HEIGHT, colour, f"{bar.label}: {shown}"))
        parts.append(_text(LABEL_WIDTH + width + 6, y + ROW_HEIGHT / 2 + 4, shown))
    return _svg(title, desc, max(len(bars), 1) * ROW_HEIGHT + 6, "".join(parts))


def stacked_chart(title: str, desc: str, bars: Sequence[StackedBar], unit: str) -> Markup:
    """Horizontal bars split into coloured parts, with a legend of the parts."""
    if not bars:
        return empty(f"{title}: no flag in this period yet.")
    totals = [sum(value for _, value in bar.parts) for bar in bars]
    top_value = max(totals, default=0.0) or 1.0
    plot = WIDTH - LABEL_WIDTH - 90
    parts = []
    for index, (bar, total) in enumerate(zip(bars, totals, strict=True)):
        y, x = index * ROW_HEIGHT, float(LABEL_WIDTH)
        parts.append(_text(LABEL_WIDTH - 8, y + ROW_HEIGHT / 2 + 4, _clip(bar.label), "end"))
        for name, value in bar.parts:
            width = plot * value / top_value
            tip = f"{bar.label}, {name}: {number(value)} {unit}"
            if value > 0:
                parts.append(_rect(x, y + 6, width, BAR_HEIGHT, PART_COLOURS.get(name, PLAIN), tip))
            x += width
        parts.append(_text(x + 6, y + ROW_HEIGHT / 2 + 4, f"{number(total)} {unit}"))
    legend = _parts_legend(len(bars) * ROW_HEIGHT)
    return _svg(title, desc, max(len(bars), 1) * ROW_HEIGHT + 30, "".join(parts) + legend)


def _parts_legend(top: float) -> str:
    parts, x = [], float(LABEL_WIDTH)
    for name, colour in PART_COLOURS.items():
        parts.append(f'<rect x="{x:.1f}" y="{top + 8:.1f}" width="12" height="12" '
                     f'fill="{colour}" rx="2"/>')  # fmt: skip
        parts.append(_text(x + 16, top + 18, name))
        x += 40 + 7 * len(name)
    return "".join(parts)


def column_chart(title: str, desc: str, columns: Sequence[Bar], unit: str) -> Markup:
    """Vertical columns over time (weekly series), labelled every few weeks, on a grid
    of round values (0, 2, 4, 6…) so a column can be read against a line."""
    if not any(column.value > 0 for column in columns):
        return empty(f"{title}: nothing in this period yet, every week is 0.")
    height, base, left = 200, 170, 40
    ticks = nice_ticks(max(c.value for c in columns))
    top_value = ticks[-1]
    slot = (WIDTH - left - 10) / max(len(columns), 1)
    parts = []
    for tick in ticks:
        y = base - (base - 10) * tick / top_value
        parts.append(_line(left, y, WIDTH - 10, y, MUTED if tick == 0 else GRID))
        parts.append(_text(left - 6, y + 4, f"{tick:g}", "end", MUTED))
    every = max(1, -(-len(columns) // 7))  # at most 7 labels: they never overlap
    for index, column in enumerate(columns):
        x = left + index * slot + slot * 0.15
        bar = (base - 10) * column.value / top_value
        tip = f"{column.label}: {number(column.value)} {unit}".strip()
        if column.value > 0:
            parts.append(_rect(x, base - bar, slot * 0.7, max(bar, 1.0), PLAIN, tip))
        if index % every == 0:
            parts.append(_text(x + slot * 0.35, base + 16, column.label, "middle", MUTED))
    return _svg(title, desc, height, "".join(parts))


def nice_ticks(top: float, most: int = 5) -> list[float]:
    """Round grid values from 0 past ``top``: steps of 1, 2 or 5 times a power of ten,
    at most ``most`` steps (``nice_ticks(7)`` → 0, 2, 4, 6, 8)."""
    if top <= 0:
        return [0.0, 1.0]
    rough = top / most
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    count = math.ceil(top / step - 1e-9)
    return [round(step * n, 10) for n in range(count + 1)]
