"""Planning periods as a picker offers them (the API's PERIOD pattern: a year, a half,
a quarter or a month), instead of free text whose placeholder looks filled in."""

from __future__ import annotations

from datetime import datetime


def period_choices(now: datetime, kept: set[str]) -> list[tuple[str, str]]:
    """Planning periods to pick from: this year and the next as years, halves and
    quarters (this quarter first among them), plus any period already in use."""
    periods: list[str] = []
    for year in (now.year, now.year + 1):
        periods += [f"{year}-Q{q}" for q in range(1, 5)] + [f"{year}-H1", f"{year}-H2", str(year)]
    extra = sorted(kept - set(periods))
    return [(p, _period_words(p)) for p in extra + periods]


def current_quarter(now: datetime) -> str:
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


def _period_words(period: str) -> str:
    year, _, part = period.partition("-")
    if not part:
        return f"{year} (whole year)"
    if part.startswith("Q"):
        return f"{period} (quarter {part[1:]})"
    if part.startswith("H"):
        return f"{period} ({'first' if part == 'H1' else 'second'} half)"
    return period
