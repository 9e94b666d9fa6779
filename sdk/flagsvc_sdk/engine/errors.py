"""Errors raised by the engine at its boundaries.

Only loading a snapshot and compiling a rule raise; :func:`~flagsvc_sdk.engine.evaluate`
never does (it returns a ``Result`` with reason ``ERROR`` instead)::

    EngineError          base of everything the engine raises
    ├── SnapshotError    the wire JSON has the wrong shape (load_snapshot)
    └── RuleError        a rule is invalid: unknown op, wrong values, unbounded regex
"""

from __future__ import annotations

__all__ = ["EngineError", "RuleError", "SnapshotError"]


class EngineError(Exception):
    """Base class so callers can catch every engine failure with one clause."""


class SnapshotError(EngineError):
    """The snapshot JSON does not follow the wire contract; the message names the path."""


class RuleError(EngineError):
    """A rule cannot be compiled; ``problems`` lists every reason, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
