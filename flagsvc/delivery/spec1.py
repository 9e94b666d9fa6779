"""Snapshots for SDKs that read only ``spec_version`` 1 (flagsvc-sdk 1.0.0 and earlier).

Spec 2 added flag values. A spec-1 reader refuses a spec-2 snapshot, so after the
service is upgraded every such process would keep its last snapshot until it restarts,
then answer the caller's default for every flag, boolean ones too. Instead those
clients get spec 1, the same content said the old way, for every flag spec 1 can say
exactly:

- a boolean flag: as it was (``payload`` ``null``);
- a typed flag whose off answers the caller's default and whose cohorts all serve the
  on variation: ``payload`` is the on value, which is what spec 1 means (the payload
  when the flag reaches someone, the caller's default otherwise);
- any other typed flag (an off value, a cohort's own variation) cannot be said in
  spec 1 and is left out: an old SDK answers the caller's default for it
  (``FLAG_NOT_FOUND``), never a value meant for someone else.

The spec-1 body is derived from the encoded spec-2 body once per content and process
(a small cache keyed by environment and content hash), so the shared snapshot store and
the build path stay single-spec.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from threading import Lock
from typing import Any

from flagsvc.delivery.snapshots import EncodedSnapshot

SPEC = 1
ETAG_SUFFIX = ".s1"  # a spec-1 body is another representation: never a 304 across specs
_CACHED = 64  # environments × versions in flight; each entry is one body

_cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
_lock = Lock()


def fits(flag: dict[str, Any]) -> bool:
    """Whether spec 1 says what this spec-2 flag serves, exactly."""
    if flag.get("type", "boolean") == "boolean":
        return True
    return flag.get("off") is None and not flag.get("cohort_variations")


def downgrade(wire: dict[str, Any]) -> dict[str, Any]:
    """A spec-2 wire snapshot as spec 1 (the flags spec 1 cannot say are left out)."""
    flags = {}
    for key, flag in wire["flags"].items():
        if not fits(flag):
            continue
        typed = flag.get("type", "boolean") != "boolean"
        flags[key] = {
            "key": flag["key"],
            "salt": flag["salt"],
            "stage": flag["stage"],
            "rollout_percent": flag["rollout_percent"],
            "killed": flag["killed"],
            "cohorts": flag["cohorts"],
            "exclusions": flag["exclusions"],
            "payload": flag["variations"][flag["on"]] if typed else None,
        }
    used = {cohort for flag in flags.values() for cohort in flag["cohorts"]}
    cohorts = {k: v for k, v in wire["cohorts"].items() if k in used}
    return {**wire, "spec_version": SPEC, "flags": flags, "cohorts": cohorts}


def body(encoded: EncodedSnapshot) -> bytes:
    """The spec-1 body of ``encoded`` (computed once per content, then cached)."""
    key = (encoded.environment, f"{encoded.version}:{encoded.content_hash}")
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    made = json.dumps(
        downgrade(json.loads(encoded.body)), separators=(",", ":"), sort_keys=True
    ).encode()
    with _lock:
        _cache[key] = made
        while len(_cache) > _CACHED:
            _cache.popitem(last=False)
    return made


def etag(encoded: EncodedSnapshot) -> str:
    """The spec-1 representation's ETag."""
    return encoded.etag + ETAG_SUFFIX
