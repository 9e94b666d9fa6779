"""Wire JSON builders for snapshots (spec 2), shared by the engine and SDK tests.

``flag_doc(payload=...)`` stands for a flag of the former model with that payload: its
typed values as spec 1 reads them (``engine.values.from_payload``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flagsvc_sdk.engine.values import from_payload

Doc = dict[str, Any]

FLAG_DEFAULTS: Doc = {
    "salt": "a1b2c3d4",
    "stage": "general",
    "rollout_percent": 0,
    "killed": False,
    "cohorts": [],
    "exclusions": [],
    "type": "boolean",
    "variations": {"on": True, "off": False},
    "on": "on",
    "off": "off",
}
OPTIONAL = {"cohort_variations", "key_result", "flow_item"}


def flag_doc(key: str = "new-checkout", **fields: Any) -> Doc:
    """Wire JSON of one flag: ``FLAG_DEFAULTS`` (general at 0 %) with ``fields`` overridden."""
    if "payload" in fields:
        values = from_payload(fields.pop("payload"))
        fields |= {"type": values.type.value, "variations": dict(values.values),
                   "on": values.on, "off": values.off}  # fmt: skip
    unknown = set(fields) - set(FLAG_DEFAULTS) - OPTIONAL
    assert not unknown, f"unknown flag fields: {unknown}"
    return {"key": key, **FLAG_DEFAULTS, **fields}


def cohort_doc(
    key: str, *, members: Sequence[str] = (), rules: Sequence[Doc] = (), opt_in: bool = False
) -> Doc:
    """Wire JSON of one cohort; defaults: no members, no rules."""
    return {"key": key, "members": list(members), "rules": list(rules), "opt_in": opt_in}


def snapshot_doc(flags: Sequence[Doc] = (), cohorts: Sequence[Doc] = (), version: int = 42) -> Doc:
    """Wire JSON of a whole snapshot from flag and cohort documents."""
    return {
        "spec_version": 2,
        "environment": "production",
        "version": version,
        "flags": {flag["key"]: flag for flag in flags},
        "cohorts": {cohort["key"]: cohort for cohort in cohorts},
    }
