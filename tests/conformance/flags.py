"""The flags OpenFeature's scenarios name, as flagsvc flags on a live service.

OpenFeature's test data (a flag per case: variants, a default variant, a targeting
expression) is expressed in flagsvc's own model, in the ``staging`` environment:
a flag serving one value to everyone is **released** (reason ``STATIC``); targeting by
context attributes is an **early-access cohort** whose rules say the same thing, serving
its own variation (``TARGETING_MATCH``), everyone else the off variation (``DEFAULT``);
a disabled flag is **killed** without an off variation, so OpenFeature's caller's default
is the answer (``DISABLED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx

from tests.live_helpers import state_path

ENVIRONMENT = "staging"
TEMPLATE = {"showImages": True, "title": "Check out these pics!", "imagesPerPage": 100}
MACROSOFT = [{"attribute": "email", "op": "eq", "values": ["ballmer@macrosoft.com"]}]
INTERNAL = [
    {"attribute": "customer", "op": "eq", "values": [False]},
    {"attribute": "email", "op": "eq", "values": ["ballmer@macrosoft.com"]},
    {"attribute": "age", "op": "gt", "values": [10]},
]
CONTEXT_AWARE = [
    {"attribute": "fn", "op": "eq", "values": ["Sulisław"]},
    {"attribute": "ln", "op": "eq", "values": ["Świętopełk"]},
    {"attribute": "age", "op": "eq", "values": [29]},
    {"attribute": "customer", "op": "eq", "values": [False]},
]
COHORTS = {"macrosoft": MACROSOFT, "internal": INTERNAL, "context-aware": CONTEXT_AWARE}


@dataclass(frozen=True)
class TestFlag:
    """One flag: its type, variations, on and off, and how it stands in staging."""

    key: str
    value_type: str = "boolean"
    variations: dict[str, Any] = field(default_factory=dict)
    on: str = "on"
    off: str | None = None
    stage: str = "released"
    killed: bool = False
    cohort: str | None = None  # an early-access cohort serving its own variation
    cohort_serves: str | None = None


def _typed(
    key: str, value_type: str, variations: dict[str, Any], on: str, **state: Any
) -> TestFlag:
    return TestFlag(key, value_type, variations, on, **state)


def _zero(kind: str, value_type: str, zero: Any, other: Any, **state: Any) -> TestFlag:
    """``<kind>-zero-flag`` / ``<kind>-targeted-zero-flag``: the zero value served."""
    variations = {"zero": zero, "non-zero": other}
    return TestFlag(f"{kind}-flag", value_type, variations, "zero", **state)


def _targeted(kind: str, value_type: str, zero: Any, other: Any) -> TestFlag:
    variations = {"zero": zero, "non-zero": other}
    return TestFlag(
        f"{kind}-targeted-zero-flag", value_type, variations, "non-zero", "zero",
        stage="early_access", cohort="macrosoft", cohort_serves="zero",
    )  # fmt: skip


def _disabled(kind: str, value_type: str, values: dict[str, Any], on: str) -> TestFlag:
    off = "off" if value_type == "boolean" else None  # no off value: the caller's default
    return TestFlag(f"{kind}-disabled-flag", value_type, values, on, off, killed=True)


FLAGS = [
    TestFlag("boolean-flag"),
    TestFlag("metadata-flag"),
    _typed("string-flag", "string", {"greeting": "hi", "parting": "bye"}, "greeting"),
    _typed("integer-flag", "integer", {"one": 1, "ten": 10}, "ten"),
    _typed("float-flag", "float", {"tenth": 0.1, "half": 0.5}, "half"),
    _typed("object-flag", "object", {"empty": {}, "template": TEMPLATE}, "template"),
    _typed("wrong-flag", "string", {"one": "uno", "two": "dos"}, "one"),
    _zero("string-zero", "string", "", "str"),
    _zero("integer-zero", "integer", 0, 1),
    _zero("float-zero", "float", 0.0, 1.0),
    _zero("object-zero", "object", {}, TEMPLATE),
    TestFlag("boolean-zero-flag", stage="off"),  # see docs/openfeature-conformance.md
    TestFlag("boolean-targeted-zero-flag", stage="early_access", cohort="macrosoft"),
    _targeted("string", "string", "", "str"),
    _targeted("integer", "integer", 0, 1),
    _targeted("float", "float", 0.0, 1.0),
    _targeted("object", "object", {}, TEMPLATE),
    *(
        TestFlag(
            key,
            "string",
            {"internal": "INTERNAL", "external": "EXTERNAL"},
            "internal",
            "external",
            stage="early_access",
            cohort=cohort,
        )
        for key, cohort in (("context-aware", "context-aware"), ("complex-targeted", "internal"))
    ),
    TestFlag("boolean-disabled-flag", off="off", killed=True),
    _disabled("string", "string", {"greeting": "hi"}, "greeting"),
    _disabled("integer", "integer", {"ten": 10}, "ten"),
    _disabled("float", "float", {"half": 0.5}, "half"),
    _disabled("object", "object", {"template": TEMPLATE}, "template"),
]


def create_all(admin: httpx.Client) -> None:
    """Create every cohort and flag above in ``staging`` (a fresh database)."""
    for key, rules in COHORTS.items():
        cohort = {"key": key, "name": key, "rules": rules, "opt_in": False}
        _ok(admin.post("/api/v1/cohorts", json=cohort))
    key_result = _key_result(admin)
    for flag in FLAGS:
        _create(admin, flag, key_result)


def _key_result(admin: httpx.Client) -> int:
    objective = {"title": "OpenFeature conformance", "period": "2026-Q4", "owner": "sdk"}
    created = _ok(admin.post("/api/v1/objectives", json=objective))
    body = {"title": "Scenarios passing", "metric": "share", "baseline": 0, "target": 1}
    return int(_ok(admin.post(f"/api/v1/objectives/{created['id']}/key-results", json=body))["id"])


def _create(admin: httpx.Client, flag: TestFlag, key_result: int) -> None:
    body: dict[str, Any] = {
        "key": flag.key, "name": flag.key, "flow_item": "feature", "key_result_id": key_result,
    }  # fmt: skip
    if flag.value_type != "boolean":
        variations = [{"key": k, "value": v} for k, v in flag.variations.items()]
        body |= {"value_type": flag.value_type, "variations": variations,
                 "on_variation": flag.on, "off_variation": flag.off}  # fmt: skip
    _ok(admin.post("/api/v1/flags", json=body))
    path = state_path(flag.key, ENVIRONMENT)
    if flag.cohort is not None:
        own = {flag.cohort: flag.cohort_serves} if flag.cohort_serves else {}
        etag = admin.get(path).headers["ETag"]
        cohorts = {"cohorts": [flag.cohort], "variations": own}
        _ok(admin.put(f"{path}/cohorts", json=cohorts, headers={"If-Match": etag}))
    if flag.stage != "off":
        _ok(admin.post(f"{path}/stage", json={"stage": flag.stage}))
    if flag.killed:
        _ok(admin.post(f"{path}/kill"))


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()
