"""Run every golden case in ``spec/*.json`` (the cases other SDKs must pass too)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import mmh3
import pytest
from flagsvc_sdk.engine import SPEC_VERSION
from flagsvc_sdk.engine import Result
from flagsvc_sdk.engine import RuleError
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import SnapshotError
from flagsvc_sdk.engine import bucket
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot
from flagsvc_sdk.engine import parse_rule
from flagsvc_sdk.engine import threshold
from flagsvc_sdk.engine import validate_rule
from flagsvc_sdk.engine.patches import PatchError
from flagsvc_sdk.engine.patches import apply_patches
from flagsvc_sdk.engine.patches import dump_snapshot

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec"
KINDS = {"bucketing", "evaluation", "patch", "rule", "rule_validation", "snapshot_validation"}
Doc = dict[str, Any]


@cache
def _spec_files() -> tuple[tuple[str, Doc], ...]:
    paths = sorted(SPEC_DIR.glob("*.json"))
    return tuple((path.name, json.loads(path.read_text(encoding="utf-8"))) for path in paths)


def _cases(kind: str, section: str = "cases") -> list[Any]:
    return [
        pytest.param(doc, case, id=f"{name}:{case['name']}")
        for name, doc in _spec_files()
        if doc["kind"] == kind
        for case in doc[section]
    ]


def _wire(result: Result) -> str:
    """Compare as JSON so that 0 and false, or 1 and true, stay different."""
    fields = ("enabled", "value", "reason", "matched_cohort", "error_code", "variation")
    return json.dumps({field: getattr(result, field) for field in fields}, sort_keys=True)


@cache
def _snapshot(file_name: str, snapshot_name: str) -> Snapshot:
    doc = dict(_spec_files())[file_name]
    return load_snapshot(doc["snapshots"][snapshot_name])


def test_spec_files__every_file__known_kind_current_version_and_unique_names() -> None:
    assert len(_spec_files()) >= 5
    for name, doc in _spec_files():
        assert doc["spec_version"] == SPEC_VERSION, name
        assert doc["kind"] in KINDS, name
        names = [case["name"] for case in doc["cases"]]
        assert len(names) == len(set(names)), name


def test_spec_files__all_kinds__at_least_100_cases() -> None:
    assert sum(len(doc["cases"]) for _, doc in _spec_files()) >= 100


@pytest.mark.parametrize(("doc", "case"), _cases("bucketing"))
def test_spec_bucketing__vector__same_hash_and_bucket(doc: Doc, case: Doc) -> None:
    # Given
    joined = f"{case['flag_key']}:{case['salt']}:{case['user_key']}"
    assert case["hash_input"] == joined
    # Then
    assert mmh3.hash(joined.encode(), 0, signed=False) == case["hash"]
    assert bucket(case["flag_key"], case["salt"], case["user_key"]) == case["bucket"]


@pytest.mark.parametrize(("doc", "case"), _cases("bucketing", "thresholds"))
def test_spec_threshold__percent__bucket_count(doc: Doc, case: Doc) -> None:
    assert threshold(case["rollout_percent"]) == case["threshold"]


@pytest.mark.parametrize(("doc", "case"), _cases("evaluation"))
def test_spec_evaluation__case__expected_result(doc: Doc, case: Doc) -> None:
    # Given
    file_name = next(name for name, candidate in _spec_files() if candidate is doc)
    snapshot = _snapshot(file_name, case["snapshot"])
    # When
    result = evaluate(snapshot, case["flag"], case["context"])
    # Then
    assert _wire(result) == json.dumps(case["expected"], sort_keys=True)


@pytest.mark.parametrize(("doc", "case"), _cases("rule"))
def test_spec_rule__case__cohort_match_as_expected(
    build_snapshot: Callable[..., Snapshot],
    flag_doc: Callable[..., Doc],
    cohort_doc: Callable[..., Doc],
    doc: Doc,
    case: Doc,
) -> None:
    # Given a flag in early access whose only cohort has only this rule and no members
    flag = flag_doc("f", stage="early_access", cohorts=["c"])
    snapshot = build_snapshot([flag], [cohort_doc("c", rules=[case["rule"]])])
    # When
    result = evaluate(snapshot, "f", case["context"])
    # Then
    assert result.reason == ("TARGETING_MATCH" if case["expected"] else "DEFAULT")


@pytest.mark.parametrize(("doc", "case"), _cases("rule_validation"))
def test_spec_rule_validation__case__valid_as_expected(doc: Doc, case: Doc) -> None:
    problems = validate_rule(case["rule"])
    assert (problems == []) is case["valid"], problems
    if not case["valid"]:
        with pytest.raises(RuleError):
            parse_rule(case["rule"])


@pytest.mark.parametrize(("doc", "case"), _cases("snapshot_validation"))
def test_spec_snapshot_validation__case__loads_or_fails_as_expected(doc: Doc, case: Doc) -> None:
    if case["valid"]:
        load_snapshot(case["snapshot"])
    else:
        with pytest.raises(SnapshotError):
            load_snapshot(case["snapshot"])


@pytest.mark.parametrize(("doc", "case"), _cases("patch"))
def test_spec_patch__case__applies_to_expected_or_refused(doc: Doc, case: Doc) -> None:
    # Given
    held = load_snapshot(doc["snapshots"][case["snapshot"]])
    expected = case["expected"]
    if "error" in expected:
        # When / Then
        with pytest.raises(SnapshotError) as refused:
            apply_patches(held, case["patch"])
        assert getattr(refused.value, "gap", False) is (expected["error"] == "gap")
        return
    # When
    patched = apply_patches(held, case["patch"])
    # Then
    assert dump_snapshot(patched) == expected["snapshot"]
    for check in case["evaluations"]:
        result = evaluate(patched, check["flag"], check["context"])
        assert (result.reason, result.enabled) == (check["reason"], check["enabled"]), check
    assert load_snapshot(expected["snapshot"]).flag_keys is not None  # the expectation loads


def test_apply_patches__untouched_flags_and_cohorts__reused_not_rebuilt() -> None:
    # Given
    doc = dict(_spec_files())["patches.json"]
    held = load_snapshot(doc["snapshots"]["base"])
    case = next(c for c in doc["cases"] if c["name"].startswith("one member added"))
    # When
    patched = apply_patches(held, case["patch"])
    # Then
    assert patched.flags["plain"] is held.flags["plain"]
    assert patched.cohorts["nl"] is held.cohorts["nl"]
    assert patched.flags["checkout"].cohorts[0] is patched.cohorts["beta"]


def test_patch_error__gap__is_a_snapshot_error_saying_so() -> None:
    assert issubclass(PatchError, SnapshotError)
    assert PatchError("x", gap=True).gap and not PatchError("y").gap
