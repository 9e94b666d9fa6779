"""Every endpoint against every kind of caller: admin, engineer, marketing, viewer, SDK key, none.

The expected answer comes from this file's own table of which permission each endpoint
needs, checked against ``flagsvc.domain.roles``: a caller without the permission gets
403 (401 without credentials), a caller with it never does, and no route is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from flagsvc.domain.roles import Permission
from flagsvc.domain.roles import Role
from flagsvc.domain.roles import allows
from tests.conftest import Caller

SDK = "sdk"
CALLERS = [*(role.value for role in Role), SDK, "none"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    needs: Permission | str  # a Permission, or SDK for /sdk/v1
    body: Any = None


FLAG = "/api/v1/flags/matrix-flag"
STATE = f"{FLAG}/environments/staging"
ENDPOINTS = [
    Endpoint("GET", "/api/v1/environments", Permission.READ),
    Endpoint("POST", "/api/v1/environments", Permission.MANAGE_ENVIRONMENTS, {"key": "qa", "name": "QA"}),
    Endpoint("POST", "/api/v1/environments/staging/sdk-keys", Permission.MANAGE_ENVIRONMENTS),
    Endpoint("GET", "/api/v1/environments/staging/sdk-keys", Permission.MANAGE_ENVIRONMENTS),
    Endpoint("DELETE", "/api/v1/environments/development/sdk-keys/{spare_sdk_key}", Permission.MANAGE_ENVIRONMENTS),
    Endpoint("GET", "/api/v1/objectives", Permission.READ),
    Endpoint("POST", "/api/v1/objectives", Permission.EDIT_OKRS, {"title": "t", "period": "2026-Q4", "owner": "o"}),
    Endpoint("GET", "/api/v1/objectives/{objective}", Permission.READ),
    Endpoint("PATCH", "/api/v1/objectives/{objective}", Permission.EDIT_OKRS, {"title": "t2"}),
    Endpoint("POST", "/api/v1/objectives/{objective}/key-results", Permission.EDIT_OKRS,
             {"title": "k", "metric": "m", "baseline": 0, "target": 1}),
    Endpoint("GET", "/api/v1/key-results/{key_result}", Permission.READ),
    Endpoint("PATCH", "/api/v1/key-results/{key_result}", Permission.EDIT_OKRS, {"current": 0.5}),
    Endpoint("GET", "/api/v1/flags", Permission.READ),
    Endpoint("POST", "/api/v1/flags", Permission.EDIT_FLAGS,
             {"key": "other-flag", "name": "o", "flow_item": "feature", "key_result_id": "{key_result}"}),
    Endpoint("GET", FLAG, Permission.READ),
    Endpoint("PATCH", FLAG, Permission.EDIT_FLAGS, {"name": "renamed"}),
    Endpoint("POST", f"{FLAG}/archive", Permission.EDIT_FLAGS),
    Endpoint("POST", f"{FLAG}/unarchive", Permission.EDIT_FLAGS),
    Endpoint("PUT", f"{FLAG}/variations", Permission.EDIT_FLAGS,
             {"variations": [], "on_variation": "on", "off_variation": "off"}),
    Endpoint("GET", STATE, Permission.READ),
    Endpoint("POST", f"{STATE}/stage", Permission.MOVE_STAGES, {"stage": "early_access"}),
    Endpoint("PUT", f"{STATE}/cohorts", Permission.MOVE_STAGES, {"cohorts": ["matrix-cohort"]}),
    Endpoint("PUT", f"{STATE}/exclusions", Permission.MOVE_STAGES, {"users": ["u-9"]}),
    Endpoint("POST", f"{STATE}/kill", Permission.MOVE_STAGES),
    Endpoint("POST", f"{STATE}/resume", Permission.MOVE_STAGES),
    Endpoint("PUT", f"{STATE}/launch", Permission.SCHEDULE_LAUNCH, {"launch_at": "2030-01-01T00:00:00Z"}),
    Endpoint("DELETE", f"{STATE}/launch", Permission.SCHEDULE_LAUNCH),
    Endpoint("GET", f"{FLAG}/readiness", Permission.READ),
    Endpoint("PUT", f"{FLAG}/readiness", Permission.MARK_READINESS,
             {"items": [{"key": "docs", "label": "Docs", "required": True}]}),
    Endpoint("PUT", f"{FLAG}/readiness/docs", Permission.MARK_READINESS, {"done": True, "note": "ok"}),
    Endpoint("GET", "/api/v1/cohorts", Permission.READ),
    Endpoint("POST", "/api/v1/cohorts", Permission.EDIT_COHORTS, {"key": "c2", "name": "C2", "rules": [], "opt_in": False}),
    Endpoint("GET", "/api/v1/cohorts/matrix-cohort", Permission.READ),
    Endpoint("PATCH", "/api/v1/cohorts/matrix-cohort", Permission.EDIT_COHORTS, {"name": "renamed"}),
    Endpoint("POST", "/api/v1/cohorts/matrix-cohort/members", Permission.EDIT_COHORTS, {"add": ["u-1"]}),
    Endpoint("GET", "/api/v1/cohorts/matrix-cohort/members", Permission.READ),
    Endpoint("GET", "/api/v1/audit", Permission.READ),
    Endpoint("GET", "/api/v1/audit/verify", Permission.READ),
    Endpoint("GET", "/api/v1/audit/verify/full", Permission.VERIFY_WHOLE_AUDIT),
    Endpoint("GET", "/api/v1/audit/head", Permission.READ),
    Endpoint("GET", f"{FLAG}/timeline", Permission.READ),
    Endpoint("GET", "/api/v1/flow", Permission.READ),
    Endpoint("GET", "/api/v1/objectives/{objective}/report", Permission.READ),
    Endpoint("GET", "/api/v1/stale-flags", Permission.READ),
    Endpoint("POST", "/sdk/v1/enroll", SDK, {"cohort": "optin-cohort", "context": {"key": "u-5"}}),
    Endpoint("POST", "/sdk/v1/leave", SDK, {"cohort": "optin-cohort", "context": {"key": "u-5"}}),
    Endpoint("POST", "/sdk/v1/metrics", SDK, {"evaluations": [{"flag": "matrix-flag", "count": 1, "last_evaluated_at": "2026-10-01T09:00:00Z"}]}),
    Endpoint("POST", "/sdk/v1/evaluate", SDK, {"context": {"key": "u-1"}}),
    Endpoint("GET", "/sdk/v1/snapshot", SDK),
    Endpoint("GET", "/api/v1/tokens", Permission.MANAGE_TOKENS),
    Endpoint("POST", "/api/v1/tokens", Permission.MANAGE_TOKENS, {"name": "n", "role": "viewer"}),
    Endpoint("DELETE", "/api/v1/tokens/{spare_token}", Permission.MANAGE_TOKENS),
    Endpoint("GET", "/api/v1/webhooks", Permission.MANAGE_WEBHOOKS),
    Endpoint("POST", "/api/v1/webhooks", Permission.MANAGE_WEBHOOKS, {"name": "w2", "url": "https://example.com/w2"}),
    Endpoint("GET", "/api/v1/webhooks/{webhook}", Permission.MANAGE_WEBHOOKS),
    Endpoint("PATCH", "/api/v1/webhooks/{webhook}", Permission.MANAGE_WEBHOOKS, {"active": False}),
    Endpoint("GET", "/api/v1/webhooks/{webhook}/deliveries", Permission.MANAGE_WEBHOOKS),
    Endpoint("DELETE", "/api/v1/webhooks/{webhook}", Permission.MANAGE_WEBHOOKS),
]  # fmt: skip


def _world(admin: Caller) -> dict[str, Any]:
    """The entities the endpoints name, made by an admin."""
    objective = admin.post(
        "/api/v1/objectives", json={"title": "O", "period": "2026-Q4", "owner": "team"}
    ).json
    kr = admin.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={"title": "K", "metric": "m", "baseline": 0, "target": 1},
    ).json
    flag = {"key": "matrix-flag", "name": "M", "flow_item": "feature", "key_result_id": kr["id"]}
    assert admin.post("/api/v1/flags", json=flag).status_code == 201
    cohort = {"key": "matrix-cohort", "name": "C", "rules": [], "opt_in": False}
    assert admin.post("/api/v1/cohorts", json=cohort).status_code == 201
    optin = {"key": "optin-cohort", "name": "Opt in", "rules": [], "opt_in": True}
    assert admin.post("/api/v1/cohorts", json=optin).status_code == 201
    state = "/api/v1/flags/matrix-flag/environments/staging"  # the SDK key's environment
    etag = {"If-Match": admin.get(state).headers["ETag"]}
    used = admin.put(f"{state}/cohorts", json={"cohorts": ["optin-cohort"]}, headers=etag)
    assert used.status_code == 200
    spare = admin.post("/api/v1/tokens", json={"name": "spare", "role": "viewer"}).json
    spare_key = admin.post("/api/v1/environments/development/sdk-keys").json
    hook = admin.post("/api/v1/webhooks", json={"name": "w", "url": "https://example.com/w"}).json
    return {
        "webhook": hook["id"],
        "objective": objective["id"],
        "key_result": kr["id"],
        "spare_token": spare["id"],
        "spare_sdk_key": spare_key["id"],
    }


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if (
        isinstance(value, str)
        and value.startswith("{")
        and value.endswith("}")
        and value[1:-1] in ids
    ):
        return ids[value[1:-1]]
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _expected_denial(caller: str, needs: Permission | str) -> int | None:
    """401 / 403 when ``caller`` may not call, None when it may."""
    if caller == "none":
        return 401
    if needs == SDK:
        return None if caller == SDK else 403
    if caller == SDK:
        return 403
    assert isinstance(needs, Permission)
    return None if allows(Role(caller), needs) else 403


@pytest.mark.parametrize("caller", CALLERS)
def test_role_matrix__every_endpoint__allows_exactly_its_roles(caller, client, secrets, admin):
    ids = _world(admin)
    secret = {SDK: secrets["sdk:staging"], "none": None}.get(caller, secrets.get(caller))
    who = Caller(client, secret)
    wrong = []
    for endpoint in ENDPOINTS:
        path = _fill(endpoint.path, ids)
        response = who.request(endpoint.method, path, json=_fill(endpoint.body, ids))
        denial = _expected_denial(caller, endpoint.needs)
        if denial is not None and response.status_code != denial:
            wrong.append(f"{endpoint.method} {path}: {response.status_code}, expected {denial}")
        if (
            denial is None and response.status_code in (401, 403, 404, 405)
        ) or response.status_code >= 500:
            wrong.append(f"{endpoint.method} {path}: {response.status_code} for an allowed caller")
    assert not wrong, "\n".join(wrong)
