"""The flag evaluation engine shared by the flagsvc service and the Python SDK.

Pure: no I/O, no clock reads, stdlib + mmh3 only. Load the wire JSON once with
:func:`load_snapshot`, then call :func:`evaluate` (it never raises)::

    snapshot = load_snapshot(json.loads(body))
    result = evaluate(snapshot, "new-checkout", {"key": "user-1", "country": "NL"})
    result.variation, result.value, result.reason  # "v2", "v2", Reason.TARGETING_MATCH
"""

from __future__ import annotations

from .bucketing import BUCKETS
from .bucketing import bucket
from .bucketing import is_unicode
from .bucketing import threshold
from .context import canonical_context
from .context import is_keyless
from .context import user_key_of
from .errors import EngineError
from .errors import RuleError
from .errors import SnapshotError
from .evaluator import FLAG_NOT_FOUND
from .evaluator import evaluate
from .evaluator import evaluate_all
from .model import Cohort
from .model import Context
from .model import Counted
from .model import ErrorCode
from .model import Flag
from .model import Predicate
from .model import Reason
from .model import Result
from .model import Rule
from .model import Snapshot
from .model import Stage
from .operators import OPERATORS
from .patches import PatchDoc
from .patches import PatchError
from .patches import PatchesDoc
from .patches import apply_patch
from .patches import apply_patches
from .patches import dump_snapshot
from .patches import is_patch_document
from .rules import MAX_ATTRIBUTE_LENGTH
from .rules import MAX_VALUES
from .rules import compile_rule
from .rules import compile_rules
from .rules import parse_rule
from .rules import validate_rule
from .safe_regex import MAX_PATTERN_LENGTH
from .safe_regex import MAX_SUBJECT_LENGTH
from .safe_regex import validate_regex
from .values import BOOLEAN
from .values import ValueType
from .values import Variations
from .wire import READABLE
from .wire import SPEC_VERSION
from .wire import CohortDoc
from .wire import FlagDoc
from .wire import RuleDoc
from .wire import SnapshotDoc
from .wire import load_snapshot

__all__ = [
    "BOOLEAN",
    "BUCKETS",
    "FLAG_NOT_FOUND",
    "MAX_ATTRIBUTE_LENGTH",
    "MAX_PATTERN_LENGTH",
    "MAX_SUBJECT_LENGTH",
    "MAX_VALUES",
    "OPERATORS",
    "READABLE",
    "SPEC_VERSION",
    "Cohort",
    "CohortDoc",
    "Context",
    "Counted",
    "EngineError",
    "ErrorCode",
    "Flag",
    "FlagDoc",
    "PatchDoc",
    "PatchError",
    "PatchesDoc",
    "Predicate",
    "Reason",
    "Result",
    "Rule",
    "RuleDoc",
    "RuleError",
    "Snapshot",
    "SnapshotDoc",
    "SnapshotError",
    "Stage",
    "ValueType",
    "Variations",
    "apply_patch",
    "apply_patches",
    "bucket",
    "canonical_context",
    "compile_rule",
    "compile_rules",
    "dump_snapshot",
    "evaluate",
    "evaluate_all",
    "is_keyless",
    "is_patch_document",
    "is_unicode",
    "load_snapshot",
    "parse_rule",
    "threshold",
    "user_key_of",
    "validate_regex",
    "validate_rule",
]
