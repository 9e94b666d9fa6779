"""The snapshot wire format (spec_version 2, and 1 still read) and its loader.

The service serialises one environment as JSON shaped like :class:`SnapshotDoc`; the SDK
and the service's own ``evaluate`` endpoint turn it into a :class:`~.model.Snapshot` with
:func:`load_snapshot`, which validates the shape and compiles it once: members into
frozensets, rules into predicates, rollout percents into thresholds, results pre-built.
Unknown fields are ignored (a tolerant reader), so additive changes need no new version;
anything else that changes meaning bumps ``spec_version``.

Spec 2 gives each flag its values (``type``, ``variations``, ``on``, ``off``,
``cohort_variations``) and metadata (``key_result``, ``flow_item``); spec 1 had one
optional ``payload``, read as :func:`~.values.from_payload` says (bootstrap and cache
files written before keep loading).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import NoReturn
from typing import NotRequired
from typing import TypedDict
from typing import TypeGuard
from typing import TypeVar

from .bucketing import is_unicode
from .bucketing import threshold
from .errors import RuleError
from .errors import SnapshotError
from .model import Cohort
from .model import Flag
from .model import Rule
from .model import Snapshot
from .model import Stage
from .operators import is_number
from .rules import compile_rules
from .rules import parse_rule
from .values import BOOLEAN
from .values import ValueType
from .values import Variations
from .values import from_payload
from .values import typed

__all__ = ["SPEC_VERSION", "CohortDoc", "FlagDoc", "RuleDoc", "SnapshotDoc", "load_snapshot"]

SPEC_VERSION = 2
"""Version of the wire format the service writes; this engine reads it and spec 1."""
READABLE = (1, 2)
"""Spec versions this engine loads; a snapshot with another one is refused."""

T = TypeVar("T")


class RuleDoc(TypedDict):
    """``{"attribute": "country", "op": "in", "values": ["NL", "DE"]}``."""

    attribute: str
    op: str
    values: list[object]


class CohortDoc(TypedDict):
    """A cohort: members (may be 1,000,000 user keys) or ALL rules."""

    key: str
    members: list[str]
    rules: list[RuleDoc]
    opt_in: bool


class FlagDoc(TypedDict):
    """A flag's state in the environment (spec 2; spec 1 had only ``payload``)."""

    key: str
    salt: str
    stage: str
    rollout_percent: float
    killed: bool
    cohorts: list[str]
    exclusions: list[str]
    type: str
    variations: dict[str, object]
    on: str
    off: str | None
    cohort_variations: NotRequired[dict[str, str]]
    key_result: NotRequired[int | None]
    flow_item: NotRequired[str | None]


class SnapshotDoc(TypedDict):
    """The whole document served at ``GET /sdk/v1/snapshot``."""

    spec_version: int
    environment: str
    version: int
    flags: dict[str, FlagDoc]
    cohorts: dict[str, CohortDoc]


class _Fields:
    """Typed access to the fields of one JSON object; errors name the full path."""

    def __init__(self, path: str, doc: object) -> None:
        self.path = path
        if not isinstance(doc, Mapping):
            _fail(path, "must be an object")
        self.doc: Mapping[str, object] = doc

    def get(self, name: str) -> object:
        if name not in self.doc:
            _fail(f"{self.path}.{name}", "is required")
        return self.doc[name]

    def string(self, name: str) -> str:
        return self._typed(name, str, "a string")

    def text(self, name: str) -> str:
        """A string that is valid Unicode: it is hashed, and only such text has UTF-8 bytes."""
        value = self.string(name)
        if not is_unicode(value):
            _fail(f"{self.path}.{name}", "must be valid Unicode (no lone surrogates)")
        return value

    def boolean(self, name: str) -> bool:
        return self._typed(name, bool, "a boolean")

    def items(self, name: str) -> Sequence[object]:
        return self._typed(name, list, "a list")

    def objects(self, name: str) -> Mapping[str, object]:
        value = self.get(name)
        if not isinstance(value, Mapping):
            _fail(f"{self.path}.{name}", "must be an object")
        return value

    def _typed(self, name: str, kind: type[T], want: str) -> T:
        value = self.get(name)
        if not isinstance(value, kind):
            _fail(f"{self.path}.{name}", f"must be {want}")
        return value

    def check_key(self, listed_under: str) -> None:
        if self.text("key") != listed_under:
            _fail(f"{self.path}.key", "must equal the key it is listed under")

    def strings(self, name: str) -> Sequence[str]:
        values = self.items(name)
        if _all_strings(values):
            return values
        index = next(i for i, value in enumerate(values) if type(value) is not str)
        _fail(f"{self.path}.{name}[{index}]", "must be a string")


def _all_strings(values: Sequence[object]) -> TypeGuard[Sequence[str]]:
    return all(type(value) is str for value in values)  # one pass over up to 1e6 members


def _fail(path: str, problem: str) -> NoReturn:
    raise SnapshotError(f"{path}: {problem}")


def load_snapshot(data: Mapping[str, object]) -> Snapshot:
    """Validate the wire JSON of one environment and compile it for evaluation.

    :param data: the parsed JSON document (see :class:`SnapshotDoc`).
    :raise SnapshotError: naming the first field that breaks the contract.
    """
    fields = _Fields("snapshot", data)
    spec, version = _version(fields)
    cohorts = {key: _load_cohort(key, doc) for key, doc in fields.objects("cohorts").items()}
    flags = {
        key: _load_flag(key, doc, cohorts, spec) for key, doc in fields.objects("flags").items()
    }
    return Snapshot(spec, fields.string("environment"), version, flags, cohorts)


def _version(fields: _Fields) -> tuple[int, int]:
    spec_version = fields.get("spec_version")
    if type(spec_version) is not int or spec_version not in READABLE:
        readable = " or ".join(map(str, READABLE))
        _fail("snapshot.spec_version", f"must be {readable}, got {spec_version!r}")
    version = fields.get("version")
    if type(version) is not int or version < 0:
        _fail("snapshot.version", "must be a non-negative integer")
    return spec_version, version


def _load_cohort(cohort_key: str, doc: object) -> Cohort:
    fields = _Fields(f"cohorts[{cohort_key!r}]", doc)
    fields.check_key(cohort_key)
    rules = tuple(
        _load_rule(f"{fields.path}.rules[{i}]", rule)
        for i, rule in enumerate(fields.items("rules"))
    )
    members = frozenset(fields.strings("members"))
    # parse_rule validated every rule, so compiling cannot fail here
    return Cohort(cohort_key, members, rules, fields.boolean("opt_in"), compile_rules(rules))


def _load_rule(path: str, doc: object) -> Rule:
    try:
        return parse_rule(doc)
    except RuleError as exc:
        _fail(path, "; ".join(exc.problems))


def _load_flag(flag_key: str, doc: object, cohorts: Mapping[str, Cohort], spec: int) -> Flag:
    fields = _Fields(f"flags[{flag_key!r}]", doc)
    fields.check_key(flag_key)
    refs = fields.strings("cohorts")
    values = _values(fields) if spec >= 2 else from_payload(fields.doc.get("payload"))
    return Flag(
        key=flag_key,
        salt=fields.text("salt"),
        stage=_stage(fields),
        rollout_percent=_rollout_percent(fields),
        killed=fields.boolean("killed"),
        cohorts=tuple(_cohort_ref(fields, i, ref, cohorts) for i, ref in enumerate(refs)),
        exclusions=frozenset(fields.strings("exclusions")),
        values=values,
        cohort_variations=_cohort_variations(fields, values, refs) if spec >= 2 else {},
        key_result=_optional(fields, "key_result", int),
        flow_item=_optional(fields, "flow_item", str),
    )


def _values(fields: _Fields) -> Variations:
    """The flag's type and variations; every value of the type, on and off among them."""
    value_type = _value_type(fields)
    variations = fields.objects("variations")
    values = {}
    for key, value in variations.items():
        try:
            values[key] = typed(value_type, value)
        except ValueError as problem:
            _fail(f"{fields.path}.variations[{key!r}]", str(problem))
    on, off = fields.string("on"), fields.get("off")
    if on not in values:
        _fail(f"{fields.path}.on", "must name one of the variations")
    if off is not None and (type(off) is not str or off not in values):
        _fail(f"{fields.path}.off", "must be null or name one of the variations")
    loaded = Variations(value_type, values, on, off)
    if value_type is ValueType.BOOLEAN and loaded != BOOLEAN:
        _fail(f"{fields.path}.variations", "a boolean flag has exactly on: true, off: false")
    return BOOLEAN if value_type is ValueType.BOOLEAN else loaded


def _value_type(fields: _Fields) -> ValueType:
    value = fields.string("type")
    try:
        return ValueType(value)
    except ValueError:
        _fail(f"{fields.path}.type", f"must be one of {', '.join(ValueType)}, got {value!r}")


def _cohort_variations(
    fields: _Fields, values: Variations, cohorts: Sequence[str]
) -> dict[str, str]:
    """Cohorts serving their own variation: attached here, and not on a boolean flag."""
    own = fields.doc.get("cohort_variations", {})
    if not isinstance(own, Mapping):
        _fail(f"{fields.path}.cohort_variations", "must be an object")
    for cohort, variation in own.items():
        where = f"{fields.path}.cohort_variations[{cohort!r}]"
        if cohort not in cohorts:
            _fail(where, "names a cohort the flag does not have")
        if type(variation) is not str or variation not in values.values:
            _fail(where, "must name one of the variations")
        if values.type is ValueType.BOOLEAN:
            _fail(where, "a boolean flag serves on to every cohort")
    return dict(own)


def _optional(fields: _Fields, name: str, kind: type[T]) -> T | None:
    value = fields.doc.get(name)
    if value is None or (type(value) is kind):
        return value
    _fail(f"{fields.path}.{name}", f"must be null or a {kind.__name__}")


def _stage(fields: _Fields) -> Stage:
    value = fields.string("stage")
    try:
        return Stage(value)
    except ValueError:
        _fail(f"{fields.path}.stage", f"must be one of {', '.join(Stage)}, got {value!r}")


def _rollout_percent(fields: _Fields) -> float:
    value = fields.get("rollout_percent")
    if is_number(value) and 0 <= value <= 100 and abs(value * 100 - threshold(value)) < 1e-6:
        return float(value)
    _fail(f"{fields.path}.rollout_percent", "must be a number from 0 to 100, at most 2 decimals")


def _cohort_ref(
    fields: _Fields, index: int, cohort_key: str, cohorts: Mapping[str, Cohort]
) -> Cohort:
    if cohort_key not in cohorts:
        _fail(f"{fields.path}.cohorts[{index}]", f"unknown cohort {cohort_key!r}")
    return cohorts[cohort_key]
