"""Admission rules for the regular expressions of the ``matches`` operator.

Python's ``re`` backtracks, so a hostile pattern could hang evaluation: ``(a+)+x``,
``(a|a)*x`` or even ``.*.*.*x`` take minutes on a 1024-character string. The rules the
engine promises (no back-references, no lookarounds, no nested quantifiers) stop the
exponential cases; a cost estimate stops the polynomial and the many-choice ones. The
``matches`` operator also refuses subjects longer than ``MAX_SUBJECT_LENGTH``.

Measured on the worst admitted pattern (``^a?a?…a?aa…ax`` at the budget): ~0.15 s for one
search on an adversarial subject; typical patterns take microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BACKTRACK_BUDGET", "MAX_PATTERN_LENGTH", "MAX_SUBJECT_LENGTH", "validate_regex"]

MAX_PATTERN_LENGTH = 256
"""Longest regex accepted by ``matches``."""
MAX_SUBJECT_LENGTH = 1024
"""Attribute strings longer than this never match ``matches`` (bounds regex work)."""
BACKTRACK_BUDGET = 2**21
"""Most backtracking choices a ``matches`` pattern may have (see :class:`_RegexScan`)."""

_BRACES = re.compile(r"\{(\d*)(,?)(\d*)\}")
_GROUP_PREFIX = re.compile(r"\(\?(?:[:>]|P<\w+>|[aiLmsu-]+:)")  # (?: (?> (?P<name> (?i:
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsu]+\)")
_FORBIDDEN_GROUPS = {
    "(?=": "lookarounds are not allowed",
    "(?!": "lookarounds are not allowed",
    "(?<=": "lookarounds are not allowed",
    "(?<!": "lookarounds are not allowed",
    "(?P=": "back-references are not allowed",
    "(?(": "conditional groups (back-references) are not allowed",
}
_TOO_COSTLY = (
    "the pattern may backtrack too much: anchor it with ^, bound repeats like {1,20}, "
    "or use fewer quantifiers and alternatives"
)


@dataclass(slots=True)
class _Group:
    branches: int = 1  # alternatives at this level: '|' count + 1
    quantified: bool = False  # holds a quantifier at any depth
    alternation: bool = False  # holds '|' at any depth


class _RegexScan:
    """One pass over a pattern that already compiles; records the first unsafe construct.

    The cost is a conservative count of the choices backtracking can revisit: the product
    of ``min(max + 1, MAX_SUBJECT_LENGTH)`` over quantifiers (repeat counts it can try) and
    of the alternatives of every group, times ``MAX_SUBJECT_LENGTH`` start positions unless
    the whole pattern is anchored with ``^`` or ``\\A``. Nested repetition is refused
    outright, so a product over the pattern is an upper bound.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0
        self.stack = [_Group()]
        self.closed: _Group | None = None  # the group just closed, if the last token was ')'
        self.cost = 1
        self.problem: str | None = None

    def run(self) -> str | None:
        while self.pos < len(self.pattern) and self.problem is None:
            self._step()
        root = self.stack[0]
        anchored = self.pattern.startswith(("^", "\\A")) and root.branches == 1
        self.cost *= root.branches * (1 if anchored else MAX_SUBJECT_LENGTH)
        if self.problem is None and self.cost > BACKTRACK_BUDGET:
            self.problem = _TOO_COSTLY
        return self.problem

    def _step(self) -> None:
        char = self.pattern[self.pos]
        braces = _BRACES.match(self.pattern, self.pos) if char == "{" else None
        if char in "*+?":
            self._quantify(self.pos + 1, 1 if char == "?" else None)
        elif braces is not None and braces.group() != "{}":  # Python reads "{}" literally
            lowest, comma, highest = braces.groups()
            bound = highest or (None if comma else lowest)
            self._quantify(braces.end(), None if bound is None else int(bound))
        elif char == "(":
            self._open()
        elif char == ")":
            self._close()
        else:
            self._atom(char)

    def _quantify(self, end: int, maximum: int | None) -> None:
        if end < len(self.pattern) and self.pattern[end] in "?+":
            end += 1  # lazy or possessive form of the same quantifier
        self.pos = end
        counts = MAX_SUBJECT_LENGTH if maximum is None else maximum + 1
        self.cost *= min(counts, MAX_SUBJECT_LENGTH)
        closed, self.closed = self.closed, None
        self.stack[-1].quantified = True
        if closed is None or maximum == 1:
            return  # quantifies one atom, or an optional group: no nested repetition
        if closed.quantified:
            self.problem = "nested quantifiers (a repeated group containing a quantifier)"
        elif closed.alternation:
            self.problem = "a repeated group must not contain alternation ('|')"

    def _open(self) -> None:
        head = self.pattern[self.pos : self.pos + 4]
        self.closed = None
        if not head.startswith("(?"):
            self._push(self.pos + 1)
        elif (flags := _INLINE_FLAGS.match(self.pattern, self.pos)) is not None:
            self.pos = flags.end()  # global flags such as (?i): not a group
        elif (prefix := _GROUP_PREFIX.match(self.pattern, self.pos)) is not None:
            self._push(prefix.end())
        else:  # the verbose flag x is refused too: its comments would hide structure
            reasons = [why for start, why in _FORBIDDEN_GROUPS.items() if head.startswith(start)]
            self.problem = reasons[0] if reasons else f"unsupported group or flag: {head!r}"

    def _push(self, end: int) -> None:
        self.stack.append(_Group())
        self.pos = end

    def _close(self) -> None:
        group = self.stack.pop()
        parent = self.stack[-1]
        parent.quantified = parent.quantified or group.quantified
        parent.alternation = parent.alternation or group.alternation
        self.cost *= group.branches
        self.closed = group
        self.pos += 1

    def _atom(self, char: str) -> None:
        self.closed = None
        if char == "\\":
            if self.pattern[self.pos + 1] in "123456789":
                self.problem = "back-references are not allowed"
            self.pos += 2
        elif char == "[":
            self.pos = _class_end(self.pattern, self.pos)
        else:
            if char == "|":
                self.stack[-1].branches += 1
                self.stack[-1].alternation = True
            self.pos += 1


def _class_end(pattern: str, start: int) -> int:
    """Return the index just after the character class opening at ``start``."""
    pos = start + 1
    if pattern.startswith("^", pos):
        pos += 1
    if pattern.startswith("]", pos):  # a leading ']' is a literal
        pos += 1
    while pattern[pos] != "]":
        pos += 2 if pattern[pos] == "\\" else 1
    return pos + 1


def validate_regex(pattern: object) -> list[str]:
    """Return why ``pattern`` cannot be used by ``matches``; empty when it is safe.

    Rejected: non-strings, more than ``MAX_PATTERN_LENGTH`` characters, syntax errors,
    back-references, lookarounds, comments and the verbose flag, nested quantifiers
    (``(a+)+``; an optional group such as ``(\\.\\d+)?`` is fine), alternation inside a
    repeated group (``(a|b)*``), and patterns whose estimated backtracking exceeds
    ``BACKTRACK_BUDGET`` (``.*.*x``; ``^.*.*x`` or ``^[a-z]{1,20}-\\d{1,9}`` are fine).
    """
    if not isinstance(pattern, str):
        return ["must be a string"]
    if len(pattern) > MAX_PATTERN_LENGTH:
        return [f"must be at most {MAX_PATTERN_LENGTH} characters"]
    try:
        re.compile(pattern)
    except (re.error, FutureWarning) as exc:  # FutureWarning: raised when warnings are errors
        return [f"invalid regular expression: {exc}"]
    problem = _RegexScan(pattern).run()
    return [] if problem is None else [f"unsafe regular expression: {problem}"]
