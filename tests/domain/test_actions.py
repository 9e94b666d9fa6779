"""The audit vocabulary: one enum, values that never change shape."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from flagsvc.domain.actions import Action
from flagsvc.storage.models import FLOW_ACTIONS_SQL

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def test_every_action_reads_entity_dot_what_happened() -> None:
    for action in Action:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", action.value), action


def test_values_are_unique() -> None:
    assert len({action.value for action in Action}) == len(Action)


def test_flow_index_predicate_matches_the_migration_that_created_it() -> None:
    # Given the partial index's predicate as the migration wrote it
    path = MIGRATIONS / "20261122_0003_launch_percent.py"
    spec = importlib.util.spec_from_file_location("launch_percent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Then the model's predicate, built from the enum, is the same text
    assert module.FLOW_ACTIONS_SQL == FLOW_ACTIONS_SQL
