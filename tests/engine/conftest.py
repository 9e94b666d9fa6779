"""Builders for wire documents and compiled snapshots, shared by the engine tests.

Session-scoped because they are pure functions (and hypothesis refuses function-scoped
fixtures in ``@given`` tests).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import pytest
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import load_snapshot

from tests import wire_docs
from tests.wire_docs import Doc


def _build_snapshot(flags: Sequence[Doc] = (), cohorts: Sequence[Doc] = ()) -> Snapshot:
    return load_snapshot(wire_docs.snapshot_doc(flags, cohorts))


@pytest.fixture(scope="session")
def flag_doc() -> Callable[..., Doc]:
    """Wire JSON of one flag: ``FLAG_DEFAULTS`` (general at 0 %) with ``fields`` overridden."""
    return wire_docs.flag_doc


@pytest.fixture(scope="session")
def cohort_doc() -> Callable[..., Doc]:
    """Wire JSON of one cohort; defaults: no members, no rules."""
    return wire_docs.cohort_doc


@pytest.fixture(scope="session")
def snapshot_doc() -> Callable[..., Doc]:
    """Wire JSON of a whole snapshot from flag and cohort documents."""
    return wire_docs.snapshot_doc


@pytest.fixture(scope="session")
def build_snapshot() -> Callable[..., Snapshot]:
    """Load (validate and compile) a snapshot from flag and cohort documents."""
    return _build_snapshot
