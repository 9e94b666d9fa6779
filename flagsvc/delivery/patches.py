"""Patches between consecutive snapshots, so an SDK downloads what changed, not everything.

Adding one user to a 1,000,000-member cohort used to make every SDK download the whole
13 MiB snapshot again. Each time this process installs a new version of an environment
(built here or loaded from Redis), :func:`diff_wires` compares it with the version it
held and :class:`PatchHistory` keeps that step (serialised once). ``GET
/sdk/v1/snapshot?since=V&base=H`` from an SDK that sends ``Flagsvc-Delta: 1`` is then
answered with the steps from V to the current version (the engine's
``PatchesDoc``: ``sdk/flagsvc_sdk/engine/patches.py``), or the full snapshot when:

- no step starts at V, neither in this process's history nor in the steps the
  builders share through Redis (``RedisSnapshotStore.push_step``: the process that
  builds a version shares the step to it, so another instance, or this one after a
  restart, can answer from a version it never held): V is older than the history,
  unknown, or skipped;
- the content hash H the SDK holds is not the one the step starts from (two
  processes building V at the same moment can label slightly different content with
  one version; a patch from the wrong base would carry the difference forever);
- the steps weigh as much as the snapshot they would replace.

Steps are computed from the wire documents, so a patch is right by construction: the
property test applies them after random changes and compares with the full snapshot.
(When the incremental build made a cohort's new member list from the old one, it says
what it added and removed, and that is the step's: a million members are not compared.)
A step holds whole flags and whole cohorts when a cohort is new or its rules changed;
a cohort whose members alone changed is sent as members added and removed.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_STEPS = 64
"""Steps kept per environment: an SDK further behind fetches the full snapshot."""
MAX_HISTORY_BYTES = 4 * 1024 * 1024
"""Serialised steps kept per environment at most (the oldest are dropped first)."""

Wire = Mapping[str, Any]


def diff_wires(old: Wire, new: Wire) -> dict[str, Any]:
    """One step from ``old`` to ``new`` (wire snapshots of one environment).

    Applying it to ``old`` gives ``new``: the engine's ``apply_patch`` and the golden
    cases in ``spec/patches.json`` (their ``minimal`` patches are exactly what this finds).
    """
    old_flags, new_flags = old["flags"], new["flags"]
    old_cohorts, new_cohorts = old["cohorts"], new["cohorts"]
    step: dict[str, Any] = {
        "from_version": old["version"],
        "to_version": new["version"],
        "flags_upserted": {k: f for k, f in new_flags.items() if _changed(old_flags.get(k), f)},
        "flags_removed": [k for k in old_flags if k not in new_flags],
        "cohorts_upserted": {},
        "cohorts_removed": [k for k in old_cohorts if k not in new_cohorts],
        "members_added": {},
        "members_removed": {},
    }
    for key, cohort in new_cohorts.items():
        before = old_cohorts.get(key)
        if not _changed(before, cohort):
            continue
        if before is None or _besides_members(before) != _besides_members(cohort):
            step["cohorts_upserted"][key] = cohort
            continue
        added, removed = _member_changes(before["members"], cohort["members"])
        if len(added) + len(removed) >= len(cohort["members"]):
            step["cohorts_upserted"][key] = cohort  # replaced more than it kept
            continue
        if added:
            step["members_added"][key] = added
        if removed:
            step["members_removed"][key] = removed
    return step


def _changed(old: object, new: object) -> bool:
    """Whether a part changed; an incremental build hands back unchanged parts as the
    very same objects, so a 1,000,000-member cohort it kept costs no comparison."""
    return old is not new and old != new


def _besides_members(cohort: Wire) -> dict[str, Any]:
    return {k: v for k, v in cohort.items() if k != "members"}


def _member_changes(old: Sequence[str], new: Sequence[str]) -> tuple[list[str], list[str]]:
    """Members added and removed.

    When the incremental build made ``new`` from ``old`` (``delivery.parts.cohort.Members``),
    it says what it added and removed: nothing is compared. Otherwise both lists come
    in the same order, so one member more or less leaves a long common prefix and
    suffix: only the window between them is hashed (building two sets of 1,000,000
    members took seconds on a loaded machine)."""
    made = getattr(new, "base", None)
    if made and made == getattr(old, "serial", None):
        return list(new.added), list(new.removed)  # type: ignore[attr-defined]
    start = _common_prefix(old, new)
    end = _common_suffix(old, new, start)
    before, after = set(old[start : len(old) - end]), set(new[start : len(new) - end])
    return sorted(after - before), sorted(before - after)


def _common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common prefix: a binary search comparing slices (at C speed,
    each element compared about once over all the steps)."""
    low, high = 0, min(len(a), len(b))
    while low < high:  # a[:low] == b[:low]
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: Sequence[str], b: Sequence[str], prefix: int) -> int:
    """Length of the longest common suffix that does not overlap ``prefix``."""
    low, high = 0, min(len(a), len(b)) - prefix
    while low < high:  # a[len(a) - low:] == b[len(b) - low:]
        middle = (low + high + 1) // 2
        if a[len(a) - middle : len(a) - low] == b[len(b) - middle : len(b) - low]:
            low = middle
        else:
            high = middle - 1
    return low


@dataclass(frozen=True, slots=True)
class Step:
    """One serialised step, with the content hashes it goes from and to."""

    from_version: int
    from_hash: str
    to_version: int
    to_hash: str
    body: bytes


class PatchHistory:
    """The recent steps of every environment this process held, newest last."""

    def __init__(self, max_steps: int = MAX_STEPS, max_bytes: int = MAX_HISTORY_BYTES) -> None:
        self.max_steps = max_steps
        self.max_bytes = max_bytes
        self._steps: dict[str, deque[Step]] = {}
        self._guard = threading.Lock()

    def record(self, environment: str, step: Step) -> None:
        """Keep ``step``; a step that does not continue the last one starts afresh."""
        with self._guard:
            steps = self._steps.setdefault(environment, deque())
            if steps and (steps[-1].to_version, steps[-1].to_hash) != (
                step.from_version,
                step.from_hash,
            ):
                steps.clear()
            steps.append(step)
            while len(steps) > self.max_steps or (
                len(steps) > 1 and sum(len(s.body) for s in steps) > self.max_bytes
            ):
                steps.popleft()

    def steps_since(self, environment: str, version: int, content_hash: str | None) -> list[Step]:
        """The steps from ``version`` (with that content, when given) to the newest one.

        Empty when there is no such chain (the caller then serves the full snapshot).
        """
        with self._guard:
            steps = list(self._steps.get(environment, ()))
        for index, step in enumerate(steps):
            if step.from_version == version:
                if content_hash is not None and step.from_hash != content_hash:
                    return []
                return steps[index:]
        return []


def step_of(old: Wire, old_hash: str, new: Wire, new_hash: str) -> Step:
    """Diff two versions and serialise the step once."""
    body = json.dumps(diff_wires(old, new), separators=(",", ":"), sort_keys=True).encode()
    return Step(old["version"], old_hash, new["version"], new_hash, body)


def patch_answer(
    spec_version: int, environment: str, start: int, end: int, steps: Sequence[Step]
) -> bytes:
    """The patch answer (the engine's ``PatchesDoc``) from serialised steps."""
    head = json.dumps(
        {
            "spec_version": spec_version,
            "environment": environment,
            "from_version": start,
            "version": end,
        },
        separators=(",", ":"),
    ).encode()
    return head[:-1] + b',"patches":[' + b",".join(s.body for s in steps) + b"]}"
