"""Flag value types: which JSON values a flag of each type may serve.

A flag's type is fixed when it is created. Every variation value is checked against it
where it enters (the service's API, the snapshot loader), so evaluation never meets a
value of the wrong type and the SDK's typed getters can trust the declared type:

- ``boolean``: ``true`` / ``false``; a boolean flag's variations are always
  :data:`BOOLEAN_VARIATIONS` (``on`` = ``true``, ``off`` = ``false``);
- ``string``: a JSON string;
- ``integer``: a JSON integer (never a boolean, never ``10.0``); the service also
  keeps new values within ±(2**53 - 1) (:data:`MAX_SAFE_INTEGER`), the integers every
  JSON reader holds exactly;
- ``float``: a finite JSON number (an integer is read as the same float);
- ``object``: a JSON object or array (OpenFeature's "structure").

:func:`from_payload` is how a flag of the former model (one optional ``payload`` served
when on) reads in this one; the spec-1 snapshot loader and the migration both follow it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "BOOLEAN",
    "BOOLEAN_VARIATIONS",
    "MAX_SAFE_INTEGER",
    "OFF",
    "ON",
    "ValueType",
    "Variations",
    "from_payload",
    "type_problem",
    "typed",
]

MAX_SAFE_INTEGER = 2**53 - 1
ON = "on"
"""The key of a boolean flag's ``true`` variation (and of a migrated payload)."""
OFF = "off"
"""The key of a boolean flag's ``false`` variation."""


class ValueType(StrEnum):
    """What a flag serves; fixed when the flag is created."""

    BOOLEAN = "boolean"
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    OBJECT = "object"


BOOLEAN_VARIATIONS: Mapping[str, object] = MappingProxyType({ON: True, OFF: False})
"""The fixed variations of every boolean flag."""


class Variations(NamedTuple):
    """A flag's values: ``values`` by variation key, and the keys served on and off
    (``off`` ``None``: off answers the caller's default)."""

    type: ValueType
    values: Mapping[str, object]
    on: str
    off: str | None


BOOLEAN = Variations(ValueType.BOOLEAN, BOOLEAN_VARIATIONS, ON, OFF)
"""The values of every boolean flag."""


def type_problem(value_type: ValueType, value: object) -> str | None:
    """Why ``value`` cannot be a variation of a ``value_type`` flag, or ``None`` if it can."""
    if value_type is ValueType.BOOLEAN:
        return None if type(value) is bool else "must be true or false"
    if value_type is ValueType.STRING:
        return None if type(value) is str else "must be a string"
    if value_type is ValueType.INTEGER:
        return None if type(value) is int else "must be an integer"
    if value_type is ValueType.FLOAT:
        if type(value) not in (int, float):
            return "must be a number"
        return None if math.isfinite(value) else "must be finite"  # type: ignore[arg-type]
    return None if type(value) in (dict, list) else "must be a JSON object or array"


def typed(value_type: ValueType, value: object) -> object:
    """``value`` as a ``value_type`` flag serves it (an integer of a float flag is a float).

    :raise ValueError: naming the problem when the value does not fit the type.
    """
    problem = type_problem(value_type, value)
    if problem:
        raise ValueError(problem)
    if value_type is ValueType.FLOAT:
        return float(value)  # type: ignore[arg-type]  # checked: int or float
    return value


def from_payload(payload: object) -> Variations:
    """The variations of a former-model flag with ``payload`` (``None``: none).

    No payload (or a ``true``/``false`` one, which only repeated or contradicted the
    flag's own on/off answer) is a boolean flag. Any other payload becomes the one
    variation ``on`` of its type, served on; off answers the caller's default, as it did.
    """
    if payload is None or type(payload) is bool:
        return BOOLEAN
    return Variations(_PAYLOAD_TYPES.get(type(payload), ValueType.OBJECT), {ON: payload}, ON, None)


_PAYLOAD_TYPES = {str: ValueType.STRING, int: ValueType.INTEGER, float: ValueType.FLOAT}
