"""The server's side of the golden patch cases (``spec/patches.json``): the steps it
computes are the minimal ones written there, and the history answers only contiguous
chains from the content an SDK holds."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from flagsvc_sdk.engine import apply_patches
from flagsvc_sdk.engine import dump_snapshot
from flagsvc_sdk.engine import load_snapshot

from flagsvc.delivery import parts
from flagsvc.delivery import patches
from flagsvc.delivery.patches import PatchHistory
from flagsvc.delivery.patches import Step
from flagsvc.delivery.patches import _member_changes
from flagsvc.delivery.patches import diff_wires
from flagsvc.delivery.patches import patch_answer
from flagsvc.delivery.patches import step_of

SPEC = json.loads(
    (Path(__file__).resolve().parents[2] / "spec" / "patches.json").read_text(encoding="utf-8")
)
Doc = dict[str, Any]
MINIMAL = [pytest.param(c, id=c["name"]) for c in SPEC["cases"] if c.get("minimal")]


def _sorted_lists(step: Doc) -> Doc:
    return {k: sorted(v) if isinstance(v, list) else v for k, v in step.items()}


@pytest.mark.parametrize("case", MINIMAL)
def test_diff_wires__golden_case__the_minimal_step_written_there(case: Doc) -> None:
    # Given the case's snapshot and the document the patch must give
    base = SPEC["snapshots"][case["snapshot"]]
    expected = case["expected"]["snapshot"]
    # When the server diffs them
    step = diff_wires(base, expected)
    # Then it found the step the case holds, and that step gives the document
    assert _sorted_lists(step) == _sorted_lists(case["patch"]["patches"][0])
    answer = patch_answer(
        2, "production", base["version"], expected["version"], [step_of(base, "h0", expected, "h1")]
    )
    patched = apply_patches(load_snapshot(base), json.loads(answer))
    assert dump_snapshot(patched) == expected


def test_diff_wires__most_members_replaced__cohort_sent_whole() -> None:
    # Given a cohort whose members were all replaced
    base = SPEC["snapshots"]["base"]
    new = json.loads(json.dumps(base)) | {"version": 11}
    new["cohorts"]["beta"]["members"] = ["x1", "x2"]
    # When
    step = diff_wires(base, new)
    # Then sending it whole is smaller than every change
    assert step["cohorts_upserted"] == {"beta": new["cohorts"]["beta"]}
    assert step["members_added"] == {} and step["members_removed"] == {}


def _step(start: int, end: int, start_hash: str = "", end_hash: str = "") -> Step:
    return Step(start, start_hash or f"h{start}", end, end_hash or f"h{end}", b"{}")


def test_history__chain__steps_from_the_version_asked_to_the_newest() -> None:
    history = PatchHistory()
    for start in range(1, 5):
        history.record("production", _step(start, start + 1))
    assert [s.from_version for s in history.steps_since("production", 2, "h2")] == [2, 3, 4]
    assert history.steps_since("production", 2, None)[0].from_version == 2


def test_history__other_content_at_that_version__no_steps() -> None:
    # Given steps from version 2 with content h2
    history = PatchHistory()
    history.record("production", _step(2, 3))
    # Then an SDK holding other content labelled 2 gets no patch (a full snapshot)
    assert history.steps_since("production", 2, "another-build-of-2") == []
    assert history.steps_since("production", 1, "h1") == []
    assert history.steps_since("staging", 2, "h2") == []


def test_history__a_step_that_does_not_continue__restarts_the_chain() -> None:
    # Given steps 1 -> 2 -> 3, then this process skipped to 5 from other content
    history = PatchHistory()
    history.record("production", _step(1, 2))
    history.record("production", _step(2, 3))
    history.record("production", _step(4, 5))
    # Then nothing older than the break can be patched any more
    assert history.steps_since("production", 1, "h1") == []
    assert [s.to_version for s in history.steps_since("production", 4, "h4")] == [5]


def test_history__bounded__oldest_steps_dropped() -> None:
    history = PatchHistory(max_steps=3)
    for start in range(10):
        history.record("production", _step(start, start + 1))
    assert history.steps_since("production", 6, "h6") == []
    assert len(history.steps_since("production", 7, "h7")) == 3


def test_member_changes__any_two_lists__the_set_differences() -> None:
    # Given random member lists (sorted, as the database sends them, and shuffled)
    rng = random.Random(7)
    for _ in range(2000):
        old = sorted({rng.choice("abcdefghij") for _ in range(rng.randrange(8))})
        new = sorted({rng.choice("abcdefghij") for _ in range(rng.randrange(8))})
        expected = (sorted(set(new) - set(old)), sorted(set(old) - set(new)))
        # Then only the window between common prefix and suffix decides, and rightly
        assert _member_changes(old, new) == expected
        rng.shuffle(old)
        rng.shuffle(new)
        assert _member_changes(old, new) == expected


def test_member_changes__made_by_the_build__its_account_not_a_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a cohort part and the part the incremental build made from it
    members = [f"user-{n:07d}" for n in range(5000)]
    old = parts.CohortPart.of({"key": "big", "members": members, "rules": [], "opt_in": False})
    new = old.changed([(True, ("user-0000500x", "user-0000001")), (False, ("user-0004000",))])
    assert new is not None

    def compared(*_: object) -> int:
        raise AssertionError("the lists were compared")

    monkeypatch.setattr(patches, "_common_prefix", compared)
    # Then the step is what the build did (a member already there is no change)
    step = diff_wires(
        {"version": 1, "flags": {}, "cohorts": {"big": old.wire}},
        {"version": 2, "flags": {}, "cohorts": {"big": new.wire}},
    )
    assert step["members_added"] == {"big": ["user-0000500x"]}
    assert step["members_removed"] == {"big": ["user-0004000"]}
    # And a list that was not made from it is compared, as before
    monkeypatch.undo()
    other = parts.CohortPart.of({"key": "big", "members": members, "rules": [], "opt_in": False})
    assert _member_changes(other.wire["members"], new.wire["members"]) == (
        ["user-0000500x"],
        ["user-0004000"],
    )
