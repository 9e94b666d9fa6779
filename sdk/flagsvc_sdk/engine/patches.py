"""Snapshot patches (deltas): what changed between two versions of one environment.

A change that adds one user to a 1,000,000-member cohort must not make every SDK download
the whole 13 MiB snapshot again. An SDK that announces the capability (header
``Flagsvc-Delta: 1``) asks ``GET /sdk/v1/snapshot?since=<version held>&base=<hash held>``
and gets either the full snapshot or a *patch document* (shaped like :class:`PatchesDoc`):
the steps from the version it holds to the current one, each step shaped like
:class:`PatchDoc` (Unleash's delta API and LaunchDarkly's ``patch`` events work alike)::

    {"spec_version": 2, "environment": "production", "from_version": 41, "version": 45,
     "patches": [{"from_version": 41, "to_version": 45,
                  "flags_upserted": {"new-checkout": {<the whole flag>}}, "flags_removed": [],
                  "cohorts_upserted": {}, "cohorts_removed": [],
                  "members_added": {"beta": ["user-9"]}, "members_removed": {}}]}

:func:`apply_patches` applies it to a compiled :class:`~.model.Snapshot`, reusing every
flag and cohort it does not touch, and is strict: a step that does not start at the
version held (a *gap*), removes what is not there, adds a member who already is one or
leaves a flag naming a missing cohort raises :class:`PatchError`, and the SDK then
fetches the full snapshot. Strictness is what makes a divergence visible instead of
silently carried forward. :func:`dump_snapshot` writes a compiled snapshot back as wire
JSON (the SDK's cache file after a patch; the golden cases in ``spec/patches.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from typing import TypedDict

from .errors import SnapshotError
from .model import Cohort
from .model import Flag
from .model import Snapshot
from .wire import CohortDoc
from .wire import FlagDoc
from .wire import SnapshotDoc
from .wire import _Fields
from .wire import _load_cohort
from .wire import _load_flag

__all__ = [
    "PatchDoc",
    "PatchError",
    "PatchesDoc",
    "apply_patch",
    "apply_patches",
    "dump_snapshot",
    "is_patch_document",
]


class PatchError(SnapshotError):
    """A patch that cannot apply to the snapshot held: a gap, or a contradiction.

    ``gap`` is True when the patch starts at another version than the one held (the
    SDK then fetches the full snapshot, as it does for any other ``PatchError``).
    """

    def __init__(self, message: str, *, gap: bool = False) -> None:
        super().__init__(message)
        self.gap = gap


class PatchDoc(TypedDict):
    """One step: from ``from_version`` to ``to_version``.

    Flags and cohorts upserted are whole documents (a cohort upserted carries all its
    members: it is new here, or its rules changed); a cohort whose members alone changed
    is in ``members_added`` / ``members_removed`` instead.
    """

    from_version: int
    to_version: int
    flags_upserted: dict[str, FlagDoc]
    flags_removed: list[str]
    cohorts_upserted: dict[str, CohortDoc]
    cohorts_removed: list[str]
    members_added: dict[str, list[str]]
    members_removed: dict[str, list[str]]


class PatchesDoc(TypedDict):
    """A patch answer of ``GET /sdk/v1/snapshot?since=…``: steps, applied in order."""

    spec_version: int
    environment: str
    from_version: int
    version: int
    patches: list[PatchDoc]


def is_patch_document(doc: Mapping[str, object]) -> bool:
    """A patch answer (it has ``patches``), not a full snapshot (which has ``flags``)."""
    return "patches" in doc


def apply_patches(snapshot: Snapshot, doc: Mapping[str, object]) -> Snapshot:
    """Apply a patch answer to ``snapshot``; the result is at ``doc["version"]``.

    :raise PatchError: on a gap (the answer or one of its steps does not start where the
        snapshot, or the previous step, ends), another environment or spec, or any step
        that does not apply (see :func:`apply_patch`).
    :raise SnapshotError: when a flag or cohort document in it is malformed.
    """
    fields = _Fields("patch", doc)
    if fields.get("spec_version") != snapshot.spec_version or snapshot.spec_version < 2:
        raise PatchError(f"patch: spec_version must be {snapshot.spec_version} (held), and 2+")
    if fields.get("environment") != snapshot.environment:
        raise PatchError(f"patch: environment must be {snapshot.environment!r} (held)")
    start, end = _version(fields, "from_version"), _version(fields, "version")
    if start != snapshot.version:
        raise PatchError(f"patch: from version {start}, but {snapshot.version} is held", gap=True)
    for index, step in enumerate(fields.items("patches")):
        snapshot = apply_patch(snapshot, step, f"patch.patches[{index}]")
    if snapshot.version != end:
        raise PatchError(f"patch: its steps end at {snapshot.version}, not {end}", gap=True)
    return snapshot


def apply_patch(snapshot: Snapshot, step: object, path: str = "patch") -> Snapshot:
    """Apply one step; unchanged flags and cohorts are reused as they are.

    Order: cohorts removed, cohorts upserted, members removed then added, flags removed,
    flags upserted; then every flag left naming a changed cohort is relinked to it.

    :raise PatchError: see :func:`apply_patches`.
    """
    fields = _Fields(path, step)
    start, end = _version(fields, "from_version"), _version(fields, "to_version")
    if start != snapshot.version:
        raise PatchError(f"{path}.from_version: {start}, but {snapshot.version} is held", gap=True)
    if end <= start:
        raise PatchError(f"{path}.to_version: must be above from_version {start}")
    cohorts = _patched_cohorts(fields, dict(snapshot.cohorts))
    flags = dict(snapshot.flags)
    for key in fields.strings("flags_removed"):
        if flags.pop(key, None) is None:
            raise PatchError(f"{path}.flags_removed: no flag {key!r} to remove")
    upserted = {
        key: _load_flag(key, doc, cohorts, snapshot.spec_version)
        for key, doc in fields.objects("flags_upserted").items()
    }
    flags.update(upserted)
    for key, flag in flags.items():
        if key not in upserted:
            flags[key] = _relinked(f"{path}: flags[{key!r}]", flag, cohorts)
    return Snapshot(snapshot.spec_version, snapshot.environment, end, flags, cohorts)


def _patched_cohorts(fields: _Fields, cohorts: dict[str, Cohort]) -> dict[str, Cohort]:
    for key in fields.strings("cohorts_removed"):
        if cohorts.pop(key, None) is None:
            raise PatchError(f"{fields.path}.cohorts_removed: no cohort {key!r} to remove")
    for key, doc in fields.objects("cohorts_upserted").items():
        cohorts[key] = _load_cohort(key, doc)
    removed = _member_lists(fields, "members_removed", cohorts)
    added = _member_lists(fields, "members_added", cohorts)
    for key in removed.keys() | added.keys():
        members = cohorts[key].members
        gone, new = frozenset(removed.get(key, ())), frozenset(added.get(key, ()))
        if not gone <= members:
            missing = sorted(gone - members)[0]
            raise PatchError(f"{fields.path}.members_removed[{key!r}]: {missing!r} is no member")
        if (new & members) - gone:  # the small sets' work: a member list is copied once
            already = sorted((new & members) - gone)[0]
            raise PatchError(f"{fields.path}.members_added[{key!r}]: {already!r} is a member")
        kept = members - gone if gone else members
        cohorts[key] = replace(cohorts[key], members=kept | new if new else kept)
    return cohorts


def _member_lists(fields: _Fields, name: str, cohorts: Mapping[str, Cohort]) -> dict[str, Any]:
    lists = fields.objects(name)
    for key in lists:
        if key not in cohorts:
            raise PatchError(f"{fields.path}.{name}[{key!r}]: no such cohort")
        _Fields(f"{fields.path}.{name}", lists).strings(key)
    return dict(lists)


def _relinked(path: str, flag: Flag, cohorts: Mapping[str, Cohort]) -> Flag:
    """``flag`` pointing at the current cohorts (the same flag if none changed)."""
    if all(cohorts.get(cohort.key) is cohort for cohort in flag.cohorts):
        return flag
    missing = [cohort.key for cohort in flag.cohorts if cohort.key not in cohorts]
    if missing:
        raise PatchError(f"{path}: its cohort {missing[0]!r} was removed")
    return replace(flag, cohorts=tuple(cohorts[cohort.key] for cohort in flag.cohorts))


def _version(fields: _Fields, name: str) -> int:
    value = fields.get(name)
    if type(value) is not int or value < 0:
        raise PatchError(f"{fields.path}.{name}: must be a non-negative integer")
    return value


def dump_snapshot(snapshot: Snapshot) -> SnapshotDoc:
    """The wire JSON of a compiled snapshot (spec 2): members and exclusions sorted.

    Loading it gives the same answers as ``snapshot``; for a snapshot loaded from the
    service's JSON it is that JSON (up to member order and absent optional fields).
    """
    return {
        "spec_version": snapshot.spec_version,
        "environment": snapshot.environment,
        "version": snapshot.version,
        "flags": {key: _flag_doc(flag) for key, flag in snapshot.flags.items()},
        "cohorts": {key: _cohort_doc(cohort) for key, cohort in snapshot.cohorts.items()},
    }


def _flag_doc(flag: Flag) -> FlagDoc:
    doc: FlagDoc = {
        "key": flag.key,
        "salt": flag.salt,
        "stage": flag.stage.value,
        "rollout_percent": flag.rollout_percent,
        "killed": flag.killed,
        "cohorts": [cohort.key for cohort in flag.cohorts],
        "exclusions": sorted(flag.exclusions),
        "type": flag.values.type.value,
        "variations": dict(flag.values.values),
        "on": flag.values.on,
        "off": flag.values.off,
        "key_result": flag.key_result,
        "flow_item": flag.flow_item,
    }
    if flag.cohort_variations:
        doc["cohort_variations"] = dict(flag.cohort_variations)
    return doc


def _cohort_doc(cohort: Cohort) -> CohortDoc:
    return {
        "key": cohort.key,
        "members": sorted(cohort.members),
        "rules": [
            {"attribute": rule.attribute, "op": rule.op, "values": list(rule.values)}
            for rule in cohort.rules
        ],
        "opt_in": cohort.opt_in,
    }
