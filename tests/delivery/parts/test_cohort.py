"""A cohort's part: members in chunks, changed one chunk at a time, text as a full build's."""

from __future__ import annotations

import json
import random

import pytest

from flagsvc.delivery.parts import cohort
from flagsvc.delivery.parts.cohort import CohortPart
from flagsvc.delivery.parts.cohort import Members


def _wire(members: list[str]) -> dict[str, object]:
    return {"key": "c", "members": members, "rules": [], "opt_in": False}


def _text(part: CohortPart) -> bytes:
    return b"".join(part.pieces())


def _expected(members: list[str]) -> bytes:
    wire = json.dumps(_wire(members), separators=(",", ":"), sort_keys=True)
    return f'"c":{wire}'.encode()


def test_changed__a_replayed_add_or_a_stranger_removed__nothing() -> None:
    part = CohortPart.of(_wire(["a", "b"]))
    assert part.changed([(True, ("a",)), (False, ("zed",))]) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_changed__random_changes__text_and_account_as_a_full_read(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cohort, "CHUNK", 4)
    rng = random.Random(seed)
    pool = [f"u{n:03d}" for n in range(200)] + ["é", "Z", "a"]
    members = sorted(rng.sample(pool, 60))
    part = CohortPart.of(_wire(members))
    for _ in range(30):
        adding = rng.random() < 0.5
        keys = tuple(rng.sample(pool, rng.choice([1, 3, 80])))
        before = list(part.wire["members"])
        changed = part.changed([(adding, keys)])
        after = sorted(set(before) | set(keys)) if adding else sorted(set(before) - set(keys))
        if after == before:
            assert changed is None
            continue
        assert changed is not None
        listed = changed.wire["members"]
        assert isinstance(listed, Members) and listed == after
        assert listed.base == part.wire["members"].serial
        assert (list(listed.added), list(listed.removed)) == (
            sorted(set(after) - set(before)),
            sorted(set(before) - set(after)),
        )
        assert _text(changed) == _expected(after)
        assert all(1 <= len(chunk) <= 8 for chunk in changed.chunks)
        part = changed
