"""A flag's values: its type, its variations and which of them is served on and off.

Pure rules shared by the API (422 naming the field), the services (the same checks for
callers without the API) and the snapshot build. Types and their values are the
engine's (``flagsvc_sdk.engine.values``); the service adds what only a writer needs:
sizes, key shapes, and the fixed variations of boolean flags.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flagsvc_sdk.engine.values import BOOLEAN_VARIATIONS
from flagsvc_sdk.engine.values import MAX_SAFE_INTEGER
from flagsvc_sdk.engine.values import OFF
from flagsvc_sdk.engine.values import ON
from flagsvc_sdk.engine.values import ValueType
from flagsvc_sdk.engine.values import type_problem
from flagsvc_sdk.engine.values import typed

from flagsvc.domain.validation import RESOURCE_KEY

__all__ = [
    "DESCRIPTION_MAX",
    "MAX_VARIATIONS",
    "VALUES_MAX_BYTES",
    "ValueType",
    "VariationSet",
    "boolean_set",
    "problems",
    "value_problem",
]

MAX_VARIATIONS = 20
VALUES_MAX_BYTES = 64 * 1024
"""All of a flag's values together, as compact JSON: they ship in every SDK snapshot."""
DESCRIPTION_MAX = 500

BOOLEAN_FIXED = "boolean flags have the fixed variations on (true) and off (false)"
Problem = tuple[str, str]
"""``(field path, reason)``, e.g. ``("variations[1].value", "must be an integer")``."""


@dataclass(frozen=True, slots=True)
class VariationSet:
    """A flag's values as stored: ``variations`` are ``{"key", "value", "description"}``
    dicts in order; ``off`` ``None`` answers the caller's default."""

    value_type: ValueType
    variations: Sequence[Mapping[str, Any]]
    on: str
    off: str | None

    @property
    def values(self) -> dict[str, Any]:
        """Each variation's value by key."""
        return {variation["key"]: variation["value"] for variation in self.variations}

    @property
    def keys(self) -> list[str]:
        """The variation keys, in order."""
        return [variation["key"] for variation in self.variations]

    @property
    def off_value(self) -> tuple[str | None, Any]:
        """What everyone outside the released audience gets: the off key and its value."""
        return self.off, None if self.off is None else self.values.get(self.off)

    def normalized(self) -> VariationSet:
        """The same set with each value as the type serves it (``1`` of a float flag is
        ``1.0``); call it only on a set without :func:`problems`."""
        variations = [
            {**variation, "value": typed(self.value_type, variation["value"])}
            for variation in self.variations
        ]
        return VariationSet(self.value_type, variations, self.on, self.off)

    def as_fields(self) -> dict[str, Any]:
        """The flag row's fields (and the audit's before/after)."""
        return {
            "value_type": self.value_type.value,
            "variations": [dict(variation) for variation in self.variations],
            "on_variation": self.on,
            "off_variation": self.off,
        }


def boolean_set() -> VariationSet:
    """The fixed values of every boolean flag: ``on`` = ``true``, ``off`` = ``false``."""
    variations = [{"key": k, "value": v, "description": ""} for k, v in BOOLEAN_VARIATIONS.items()]
    return VariationSet(ValueType.BOOLEAN, variations, ON, OFF)


def value_problem(value_type: ValueType, value: Any) -> str | None:
    """Why ``value`` cannot be a new value of a ``value_type`` flag, or ``None``."""
    problem = type_problem(value_type, value)
    if problem is None and value_type is ValueType.INTEGER and abs(value) > MAX_SAFE_INTEGER:
        return "must be within ±(2**53 - 1): larger integers are not exact in every JSON reader"
    if problem is None and value_type is ValueType.OBJECT:
        return _json_problem(value)
    return problem


def _json_problem(value: Any) -> str | None:
    """Objects must be plain JSON: no NaN or Infinity anywhere inside."""
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, RecursionError):
        return "must be plain JSON (no NaN or Infinity, not nested too deeply)"
    return None


def problems(candidate: VariationSet) -> list[Problem]:
    """Everything wrong with ``candidate``, each naming its field (empty: it is valid)."""
    if candidate.value_type is ValueType.BOOLEAN:
        if candidate != boolean_set():
            return [("variations", BOOLEAN_FIXED)]
        return []
    found = _variation_problems(candidate)
    keys = candidate.keys
    if candidate.on not in keys:
        found.append(("on_variation", f"must be one of the variations: {', '.join(keys)}"))
    if candidate.off is not None and candidate.off not in keys:
        found.append(("off_variation", f"must be null or one of the variations: {', '.join(keys)}"))
    return found


def _variation_problems(candidate: VariationSet) -> list[Problem]:
    variations = candidate.variations
    if not 1 <= len(variations) <= MAX_VARIATIONS:
        return [("variations", f"must hold 1 to {MAX_VARIATIONS} variations")]
    found: list[Problem] = []
    seen: set[str] = set()
    for n, variation in enumerate(variations):
        key = variation["key"]
        if not RESOURCE_KEY.match(key):
            found.append((f"variations[{n}].key", "must be 1-100 of a-z, 0-9, . _ -"))
        elif key in seen:
            found.append((f"variations[{n}].key", f"{key!r} is listed twice"))
        seen.add(key)
        problem = value_problem(candidate.value_type, variation["value"])
        if problem:
            found.append((f"variations[{n}].value", problem))
    size = len(json.dumps([v["value"] for v in variations], separators=(",", ":")).encode())
    if not found and size > VALUES_MAX_BYTES:
        found.append(("variations", f"values must be at most {VALUES_MAX_BYTES} bytes as JSON"))
    return found
