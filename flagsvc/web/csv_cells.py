"""CSV cells a spreadsheet will not run: OWASP's CSV-injection defence, in one place.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel, LibreOffice and Google Sheets: a token named
``=HYPERLINK("https://evil.example")`` became a live link in every audit export. Such
text cells get a leading ``'`` (shown as text, visibly changed); numbers stay numbers,
so a negative figure in the flow export is still a figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value``, with a ``'`` in front when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every cell of ``row`` through ``safe_cell``."""
    return {name: safe_cell(value) for name, value in row.items()}
