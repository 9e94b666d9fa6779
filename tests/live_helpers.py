"""What integration tests do to a running service (``tests/live.py``) over plain HTTP.

Shared by the SDK's live tests (``tests/sdk/test_live.py``) and the fault tests
(``tests/faults/``): an admin client, a flag in a given stage, cohorts, product code
evaluating in a loop, and waiting for a condition.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import httpx
import pytest
from flagsvc_sdk import Client

from tests.live import LiveService

T = TypeVar("T")


def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.005)


def wait_for_all(items: Iterable[T], condition: Callable[[T], object], timeout: float) -> None:
    """``condition(item)`` for every item, all within one ``timeout`` (seconds)."""
    deadline = time.monotonic() + timeout
    for item in items:
        wait_for(functools.partial(condition, item), max(0.0, deadline - time.monotonic()))


def admin_client(service: LiveService, token: str | None = None) -> httpx.Client:
    """An HTTP client sending the service's first admin token (or ``token``)."""
    secret = token or service.admin_token
    assert secret, "the service's database already had tokens: pass one"
    return httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )


def state_path(flag: str, environment: str) -> str:
    """The flag's state in one environment (``…/stage``, ``…/kill`` hang below it)."""
    return f"/api/v1/flags/{flag}/environments/{environment}"


def create_flag(
    admin: httpx.Client,
    key: str,
    *,
    environment: str = "staging",
    stage: str = "general",
    rollout_percent: float | None = 100,
) -> None:
    """A flag (with the objective and key result every flag serves) moved to ``stage``."""
    objective = admin.post(
        "/api/v1/objectives", json={"title": f"Ship {key}", "period": "2026-Q4", "owner": "qa"}
    )
    assert objective.status_code == 201, objective.text
    kr = admin.post(
        f"/api/v1/objectives/{objective.json()['id']}/key-results",
        json={
            "title": "Uptime",
            "metric": "ratio",
            "baseline": 0.9,
            "target": 0.99,
            "unit": "ratio",
        },
    )
    assert kr.status_code == 201, kr.text
    flag = {"key": key, "name": key, "flow_item": "feature", "key_result_id": kr.json()["id"]}
    created = admin.post("/api/v1/flags", json=flag)
    assert created.status_code == 201, created.text
    move: dict[str, Any] = {"stage": stage}
    if stage == "general" and rollout_percent is not None:
        move["rollout_percent"] = rollout_percent
    if stage != "off":
        moved = admin.post(f"{state_path(key, environment)}/stage", json=move)
        assert moved.status_code == 200, moved.text


def create_cohort(admin: httpx.Client, key: str, *, opt_in: bool = False) -> None:
    """A cohort without rules (members come from imports or opt-ins); 409 if it exists."""
    cohort = {"key": key, "name": key, "rules": [], "opt_in": opt_in}
    created = admin.post("/api/v1/cohorts", json=cohort)
    assert created.status_code in (201, 409), created.text


def set_cohorts(admin: httpx.Client, flag: str, environment: str, cohorts: Sequence[str]) -> None:
    """Give the flag its early-access cohorts (the endpoint wants If-Match)."""
    path = state_path(flag, environment)
    etag = admin.get(path).headers["ETag"]
    put = admin.put(f"{path}/cohorts", json={"cohorts": list(cohorts)}, headers={"If-Match": etag})
    assert put.status_code == 200, put.text


class Caller:
    """Product code: evaluates ``flag`` in a loop on its own thread, recording exceptions.

    The SDK's contract is that none ever happens, whatever the service does.
    """

    def __init__(self, client: Client, flag: str, context: Mapping[str, Any]) -> None:
        self.client, self.flag, self.context = client, flag, dict(context)
        self.errors: list[Exception] = []
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.client.is_enabled(self.flag, self.context)
                self.client.evaluate(self.flag, self.context)
                self.calls += 1
            except Exception as exc:  # the contract under test: never happens
                self.errors.append(exc)
            time.sleep(0.001)

    def stop(self) -> None:
        """Stop and check: no exception, and it did evaluate."""
        self._stop.set()
        self._thread.join()
        assert self.errors == [] and self.calls > 0
