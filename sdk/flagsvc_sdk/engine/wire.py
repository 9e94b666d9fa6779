"""The snapshot wire format (spec_version 1) and its loader.

The service serialises one environment as JSON shaped like :class:`SnapshotDoc`; the SDK
and the service's own ``evaluate`` endpoint turn it into a :class:`~.model.Snapshot` with
:func:`load_snapshot`, which validates the shape and compiles it once: members into
frozensets, rules into predicates, rollout percents into thresholds, results pre-built.
Unknown fields are ignored (a tolerant reader), so additive changes need no new version;
anything else that changes meaning bumps ``spec_version``.
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

__all__ = ["SPEC_VERSION", "CohortDoc", "FlagDoc", "RuleDoc", "SnapshotDoc", "load_snapshot"]

SPEC_VERSION = 1
"""Version of the wire format this engine reads; a snapshot with another one is refused."""

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
    """A flag's state in the environment; ``payload`` may be omitted (means null)."""

    key: str
    salt: str
    stage: str
    rollout_percent: float
    killed: bool
    cohorts: list[str]
    exclusions: list[str]
    payload: NotRequired[object]


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
    version = _version(fields)
    cohorts = {key: _load_cohort(key, doc) for key, doc in fields.objects("cohorts").items()}
    flags = {key: _load_flag(key, doc, cohorts) for key, doc in fields.objects("flags").items()}
    return Snapshot(SPEC_VERSION, fields.string("environment"), version, flags, cohorts)


def _version(fields: _Fields) -> int:
    spec_version = fields.get("spec_version")
    if type(spec_version) is not int or spec_version != SPEC_VERSION:
        _fail("snapshot.spec_version", f"must be {SPEC_VERSION}, got {spec_version!r}")
    version = fields.get("version")
    if type(version) is not int or version < 0:
        _fail("snapshot.version", "must be a non-negative integer")
    return version


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


def _load_flag(flag_key: str, doc: object, cohorts: Mapping[str, Cohort]) -> Flag:
    fields = _Fields(f"flags[{flag_key!r}]", doc)
    fields.check_key(flag_key)
    refs = fields.strings("cohorts")
    return Flag(
        key=flag_key,
        salt=fields.text("salt"),
        stage=_stage(fields),
        rollout_percent=_rollout_percent(fields),
        killed=fields.boolean("killed"),
        cohorts=tuple(_cohort_ref(fields, i, ref, cohorts) for i, ref in enumerate(refs)),
        exclusions=frozenset(fields.strings("exclusions")),
        payload=fields.doc.get("payload"),
    )


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
