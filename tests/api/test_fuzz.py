"""Property-based fuzzing of the whole admin and SDK API from its own OpenAPI document.

schemathesis generates valid and invalid requests for every operation, sends them
in-process through WSGI with each caller's credential (every role and an SDK key),
and checks: no 5xx, and every response conforms to the document (status code,
content type, body schema). ``FUZZ_EXAMPLES`` examples per operation, mode and caller
give several thousand requests per backend.

Generation is derandomized and learns nothing from the responses, so every caller on
every backend gets the same cases. Drawing them costs more than sending them, so the
first test in a process draws them once and every test sends fresh copies
(``Generated``) to its own app, with its own credential.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from requests.structures import CaseInsensitiveDict
from schemathesis import Case
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import content_type_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
CALLERS = ["admin", "engineer", "marketing", "viewer", "sdk:production"]
MIN_REQUESTS_PER_CALLER = 2_000 // len(CALLERS)  # the floor, on each backend
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def app_config() -> dict[str, int]:
    """The fuzzer's deliberate bad input must not use up the auth-failure budget."""
    return {"auth_failure_limit": 1_000_000}


def _seed(admin) -> None:
    """Real entities, so generated ids and keys sometimes hit something."""
    objective = admin.post(
        "/api/v1/objectives", json={"title": "O", "period": "2026-Q4", "owner": "t"}
    ).json
    kr = admin.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        json={"title": "K", "metric": "m", "baseline": 0, "target": 1},
    ).json
    admin.post(
        "/api/v1/flags",
        json={"key": "f1", "name": "F", "flow_item": "feature", "key_result_id": kr["id"]},
    )
    admin.post("/api/v1/cohorts", json={"key": "c1", "name": "C", "rules": [], "opt_in": True})


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # Revoking tokens or SDK keys would revoke the fuzzer's own credential; the stream
    # never ends.
    schema = (
        schema.exclude(path="/api/v1/tokens/{token_id}", method="DELETE")
        .exclude(path="/api/v1/environments/{env}/sdk-keys/{key_id}", method="DELETE")
        .exclude(path="/sdk/v1/stream")
    )
    return [result.ok() for result in schema.get_all_operations()]


@dataclass(frozen=True)
class Generated:
    """What hypothesis drew for one case, kept apart from the app it was first sent to."""

    method: Any
    path: str
    parts: dict[str, Any]
    meta: Any

    @classmethod
    def of(cls, case: Case) -> Generated:
        parts = {
            "path_parameters": case.path_parameters,
            "headers": dict(case.headers),
            "cookies": case.cookies,
            "query": case.query,
            "body": case.body,
            "media_type": case.media_type,
            "multipart_content_types": case.multipart_content_types,
        }
        return cls(case.method, case.path, _copy(parts), _copy(case._meta))

    def case(self, operation) -> Case:
        """The same request, for ``operation`` (of this test's app)."""
        parts = _copy(self.parts)
        parts["headers"] = CaseInsensitiveDict(parts["headers"])
        return Case(operation, self.method, self.path, **parts, meta=_copy(self.meta))


def _copy(value: Any) -> Any:
    """A deep copy that keeps schemathesis' ``NOT_SET`` (no body) the one object it is."""
    return copy.deepcopy(value, {id(NOT_SET): NOT_SET})


DRAWN: dict[tuple[str, GenerationMode], list[Generated]] = {}
"""Cases drawn per operation and mode, in this process (the same for every test)."""


def _generated(operation, mode: GenerationMode) -> list[Generated]:
    """The operation's cases in ``mode``, drawn by hypothesis on first use."""
    key = (operation.label, mode)
    if key not in DRAWN:
        drawn: list[Generated] = []

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def draw(case):
            drawn.append(Generated.of(case))

        draw()
        DRAWN[key] = drawn
    return DRAWN[key]


def _fuzz(operation, mode: GenerationMode, headers: dict[str, str]) -> int:
    cases = _generated(operation, mode)
    for generated in cases:
        generated.case(operation).call_and_validate(headers=headers, checks=CHECKS)
    return len(cases)


@pytest.mark.parametrize("caller", CALLERS)
def test_api__generated_requests__no_server_error_and_conform_to_openapi(
    caller, app, admin, secrets
):
    _seed(admin)
    # identity: the WSGI transport hands the checks the bytes as sent, and a gzip snapshot
    # is not JSON until decoded (tests/api/test_sdk_delivery.py checks the gzip answers)
    headers = {"Authorization": f"Bearer {secrets[caller]}", "Accept-Encoding": "identity"}
    sent = 0
    for operation in _operations(app):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += _fuzz(operation, mode, headers)
    print(f"{caller}: {sent} generated requests")
    assert sent >= MIN_REQUESTS_PER_CALLER
