"""Builders for wire documents and compiled snapshots, shared by the engine tests.

Session-scoped because they are pure functions (and hypothesis refuses function-scoped
fixtures in ``@given`` tests).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import pytest
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import load_snapshot

Doc = dict[str, Any]


FLAG_DEFAULTS: Doc = {
    "salt": "a1b2c3d4",
    "stage": "general",
    "rollout_percent": 0,
    "killed": False,
    "cohorts": [],
    "exclusions": [],
    "payload": None,
}


def _flag_doc(key: str = "new-checkout", **fields: Any) -> Doc:
    assert set(fields) <= set(FLAG_DEFAULTS), (
        f"unknown flag fields: {set(fields) - set(FLAG_DEFAULTS)}"
    )
    return {"key": key, **FLAG_DEFAULTS, **fields}


def _cohort_doc(
    key: str, *, members: Sequence[str] = (), rules: Sequence[Doc] = (), opt_in: bool = False
) -> Doc:
    return {"key": key, "members": list(members), "rules": list(rules), "opt_in": opt_in}


def _snapshot_doc(flags: Sequence[Doc] = (), cohorts: Sequence[Doc] = ()) -> Doc:
    return {
        "spec_version": 1,
        "environment": "production",
        "version": 42,
        "flags": {flag["key"]: flag for flag in flags},
        "cohorts": {cohort["key"]: cohort for cohort in cohorts},
    }


def _build_snapshot(flags: Sequence[Doc] = (), cohorts: Sequence[Doc] = ()) -> Snapshot:
    return load_snapshot(_snapshot_doc(flags, cohorts))


@pytest.fixture(scope="session")
def flag_doc() -> Callable[..., Doc]:
    """Wire JSON of one flag: ``FLAG_DEFAULTS`` (general at 0 %) with ``fields`` overridden."""
    return _flag_doc


@pytest.fixture(scope="session")
def cohort_doc() -> Callable[..., Doc]:
    """Wire JSON of one cohort; defaults: no members, no rules."""
    return _cohort_doc


@pytest.fixture(scope="session")
def snapshot_doc() -> Callable[..., Doc]:
    """Wire JSON of a whole snapshot from flag and cohort documents."""
    return _snapshot_doc


@pytest.fixture(scope="session")
def build_snapshot() -> Callable[..., Snapshot]:
    """Load (validate and compile) a snapshot from flag and cohort documents."""
    return _build_snapshot
