"""Dark mode restates colours and nothing else.

The browser checks (``tests/ui/browser.py``, ``Person.inspect``) run every axe-core rule
in the light scheme and only the rules that compare colours in the dark one: that holds
only while the dark scheme can change no layout, visibility or content. This test holds
the stylesheet to it: inside ``@media (prefers-color-scheme: dark)`` every declaration
sets a colour, and no script asks which scheme is on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tinycss2

STATIC = Path(__file__).resolve().parents[2] / "flagsvc" / "ui" / "static"
COLOUR_PROPERTIES = frozenset(
    {
        "color",
        "background",
        "background-color",
        "border-color",
        "outline-color",
        "fill",
        "stroke",
        "caret-color",
        "accent-color",
        "text-decoration-color",
    }
)
COLOUR_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla", "var"})
COLOUR_KEYWORDS = frozenset({"transparent", "currentcolor"})


def _is_colour(value: list[Any]) -> bool:
    """One colour: ``#hex``, ``rgb()``/``hsl()``, ``var(--name)`` or a colour keyword."""
    parts = [t for t in value if t.type not in ("whitespace", "comment")]
    if len(parts) != 1:
        return False
    (part,) = parts
    if part.type == "hash":
        return True
    if part.type == "function":
        return bool(part.lower_name in COLOUR_FUNCTIONS)
    return part.type == "ident" and part.lower_value in COLOUR_KEYWORDS


def _dark_blocks(css: str) -> list[Any]:
    """The ``@media`` rules of ``css`` that name ``prefers-color-scheme``."""
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    return [
        rule
        for rule in rules
        if rule.type == "at-rule"
        and rule.lower_at_keyword == "media"
        and "prefers-color-scheme" in tinycss2.serialize(rule.prelude)
    ]


def _declarations(block: Any) -> list[tuple[str, Any]]:
    """(selector, declaration) for every declaration inside a ``@media`` block."""
    found = []
    inner = tinycss2.parse_rule_list(block.content, skip_comments=True, skip_whitespace=True)
    for rule in inner:
        assert rule.type == "qualified-rule", f"unexpected {rule.type} in the dark block"
        selector = tinycss2.serialize(rule.prelude).strip()
        for item in tinycss2.parse_blocks_contents(
            rule.content, skip_comments=True, skip_whitespace=True
        ):
            assert item.type == "declaration", f"{selector}: {item.type}"
            found.append((selector, item))
    return found


def test_dark_mode__only_colours_change():
    blocks = _dark_blocks((STATIC / "ui.css").read_text())
    assert [tinycss2.serialize(b.prelude).strip() for b in blocks] == [
        "(prefers-color-scheme: dark)"
    ]
    declarations = _declarations(blocks[0])
    assert len(declarations) > 20  # the palette and the pieces with colours of their own
    not_colours = [
        f"{selector} {{ {d.name}: {tinycss2.serialize(d.value).strip()} }}"
        for selector, d in declarations
        if not (d.name.startswith("--") or d.lower_name in COLOUR_PROPERTIES)
        or not _is_colour(d.value)
        or d.important
    ]
    assert not_colours == []


def test_dark_mode__no_script_asks_for_the_scheme():
    for script in STATIC.glob("*.js"):
        assert "prefers-color-scheme" not in script.read_text(), script.name


def test_is_colour__tells_colours_from_layout():
    def value(text: str) -> list[Any]:
        return list(tinycss2.parse_component_value_list(text))

    for colour in ("#3456c4", "rgb(1 2 3)", "var(--ink)", "transparent", "currentColor"):
        assert _is_colour(value(colour)), colour
    for other in ("none", "2px", "#fff url(x.png)", "block", "1px solid #fff"):
        assert not _is_colour(value(other)), other
