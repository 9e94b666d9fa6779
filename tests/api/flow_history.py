"""A scripted release history on the injected clock, with hand-computed flow figures.

Day 0 is the clock's start (2026-10-01 09:00 UTC, a Thursday, ISO week 2026-W40).
Everything happens in production (gated) unless said otherwise:

==== =====================================================================================
day  what happens
==== =====================================================================================
0    objectives "Faster checkout" (KRs conversion, errors) and "Reliable platform" (KR
     uptime); flags A (feature, conversion) and D (risk, uptime: never moves)
1    flag B (defect, errors) created and made ready at once; A's cohorts set
2    flag C (feature, uptime) created; A → early_access
3    flag E (debt, uptime) created; B → early_access
4    C → early_access (never ready: still waiting at day 20)
5    B killed; E → early_access
6    E ready
7    B resumed; E → general 20 %
8    B → general 100 %
9    A ready
10   A → general 50 %
11   B → released
14   A → released
20   now
==== =====================================================================================

Hand-computed (days):

- A: flow time 14; readiness wait 7 (2 → 9); active 7; efficiency 0.5;
  dwell off 2, early_access 8, general 4.
- B: flow time 10; readiness wait 0 (ready before early access); blocked 2 (5 → 7);
  active 8; efficiency 0.8; dwell off 2, early_access 5, general 3.
- C: in flight, age 18, waiting for readiness now (16 days of it); dwell off 2, ea 16.
- E: in flight (general), age 17, readiness wait 1; dwell off 2, ea 2, general 13.
- D: never left ``off``: not in scope.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import built_once

START_DAY = "2026-10-01T09:00:00+00:00"
ITEMS = ["docs", "announcement", "support_enablement", "sales_briefing"]


def at_day(clock: Any, day: float) -> None:
    """Set the injected clock to ``day`` days after the start."""
    clock.now = clock.start + timedelta(days=day)


def flag_path(key: str, environment: str = "production") -> str:
    return f"/api/v1/flags/{key}/environments/{environment}"


def move(caller: Any, key: str, stage: str, percent: float | None = None, env: str = "production"):
    body: dict[str, Any] = {"stage": stage}
    if percent is not None:
        body["rollout_percent"] = percent
    response = caller.post(f"{flag_path(key, env)}/stage", json=body)
    assert response.status_code == 200, response.json
    return response.json


def make_ready(marketing: Any, key: str) -> None:
    for item in ITEMS:
        response = marketing.put(f"/api/v1/flags/{key}/readiness/{item}", json={"done": True})
        assert response.status_code == 200, response.json


def objective(engineer: Any, title: str, krs: list[str]) -> tuple[int, list[int]]:
    body = {"title": title, "period": "2026-Q4", "owner": "payments"}
    created = engineer.post("/api/v1/objectives", json=body).json
    ids = []
    for kr in krs:
        kr_body = {"title": kr, "metric": kr, "baseline": 0, "target": 10, "current": 5}
        ids.append(
            engineer.post(f"/api/v1/objectives/{created['id']}/key-results", json=kr_body).json[
                "id"
            ]
        )
    return created["id"], ids


def create_flag(engineer: Any, key: str, flow_item: str, key_result_id: int) -> None:
    body = {"key": key, "name": key.upper(), "flow_item": flow_item, "key_result_id": key_result_id}
    response = engineer.post("/api/v1/flags", json=body)
    assert response.status_code == 201, response.json


def cohorts_for_a(engineer: Any) -> None:
    """A reaches beta testers (3) and design partners (2, one also a tester), one excluded."""
    for key, members in (("beta-testers", ["u1", "u2", "u3"]), ("design-partners", ["u3", "u4"])):
        rules = [{"attribute": "plan", "op": "eq", "values": ["beta"]}]
        body = {"key": key, "name": key, "rules": rules, "opt_in": False}
        assert engineer.post("/api/v1/cohorts", json=body).status_code == 201
        assert (
            engineer.post(f"/api/v1/cohorts/{key}/members", json={"add": members}).status_code
            == 200
        )
    path = flag_path("flag-a")
    for part, body in (
        ("cohorts", {"cohorts": ["beta-testers", "design-partners"]}),
        ("exclusions", {"users": ["u2"]}),
    ):
        etag = engineer.get(path).headers["ETag"]
        response = engineer.put(f"{path}/{part}", json=body, headers={"If-Match": etag})
        assert response.status_code == 200, response.json


def build(
    engineer: Any,
    marketing: Any,
    clock: Any,
    extra: Any = lambda krs: [],
    name: str = "flow_history",
) -> dict[str, Any]:
    """Play the history above; return the ids the tests need. Leaves the clock at day 20.

    ``extra(krs)`` may add ``(day, step)`` pairs (given the key result ids conversion,
    errors, uptime), played in day order among the history's own (after them on a tie);
    ``name`` tells such a history apart. Played once per process on SQLite, later tests
    getting a copy of its database (``tests.conftest.built_once``).
    """
    app = engineer.client.application
    return built_once(app, clock, name, lambda: _play(engineer, marketing, clock, extra))


def _play(engineer: Any, marketing: Any, clock: Any, extra: Any) -> dict[str, Any]:
    clock.start = clock.now
    checkout, (conversion, errors) = objective(
        engineer, "Faster checkout", ["conversion", "errors"]
    )
    platform, (uptime,) = objective(engineer, "Reliable platform", ["uptime"])
    create_flag(engineer, "flag-a", "feature", conversion)
    create_flag(engineer, "flag-d", "risk", uptime)
    steps = _steps(engineer, marketing, errors, uptime) + extra([conversion, errors, uptime])
    for day, step in sorted(steps, key=lambda pair: pair[0]):
        at_day(clock, day)
        step()
    at_day(clock, 20)
    return {"checkout": checkout, "platform": platform, "krs": [conversion, errors, uptime]}


def _steps(engineer: Any, marketing: Any, errors: int, uptime: int) -> list[tuple[int, Any]]:
    kill, resume = f"{flag_path('flag-b')}/kill", f"{flag_path('flag-b')}/resume"
    return [
        (1, lambda: create_flag(engineer, "flag-b", "defect", errors)),
        (1, lambda: make_ready(marketing, "flag-b")),
        (1, lambda: cohorts_for_a(engineer)),
        (2, lambda: create_flag(engineer, "flag-c", "feature", uptime)),
        (2, lambda: move(engineer, "flag-a", "early_access")),
        (3, lambda: create_flag(engineer, "flag-e", "debt", uptime)),
        (3, lambda: move(engineer, "flag-b", "early_access")),
        (4, lambda: move(engineer, "flag-c", "early_access")),
        (5, lambda: engineer.post(kill)),
        (5, lambda: move(engineer, "flag-e", "early_access")),
        (6, lambda: make_ready(marketing, "flag-e")),
        (7, lambda: engineer.post(resume)),
        (7, lambda: move(engineer, "flag-e", "general", 20)),
        (8, lambda: move(engineer, "flag-b", "general", 100)),
        (9, lambda: make_ready(marketing, "flag-a")),
        (10, lambda: move(engineer, "flag-a", "general", 50)),
        (11, lambda: move(engineer, "flag-b", "released")),
        (14, lambda: move(engineer, "flag-a", "released")),
    ]
