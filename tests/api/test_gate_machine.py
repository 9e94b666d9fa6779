"""The readiness gate, proved on random sequences of everything that can widen exposure.

A hypothesis state machine drives the real API (the Flask test client, on SQLite and
PostgreSQL) as every role and as SDK keys of a gated environment (``production``) and
an ungated one (``development``): stage moves (retire and rollback included), kill and
resume, ramps, cohorts created, edited, filled and attached, exclusions, enrol and
leave, readiness marked and unmarked, the checklist replaced, the off variation of a
typed flag changed, launches scheduled and run by the scheduler. After every step it
reads the flag's readiness from the service and, while it is incomplete, takes
production's SDK snapshot over HTTP and evaluates it with the SDK's engine for users
nobody picked (random keys of many shapes, no attributes or attributes no bounded
cohort selects, no key at all) and checks the invariant (``docs/decisions.md``, "The
readiness gate"): while the flag's readiness is incomplete none of them is on, and a
typed flag serves them only an off value it had while ready (or at creation).

Each example works on a flag and cohorts of its own (keys carry the example's
number), so examples share one database without seeing each other.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flagsvc_sdk.engine import Snapshot
from flagsvc_sdk.engine import evaluate
from flagsvc_sdk.engine import load_snapshot
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from flagsvc.domain.readiness import is_ready
from flagsvc.services import flags
from flagsvc.services import readiness
from flagsvc.services import scheduler
from flagsvc.state import AppState
from tests.conftest import Caller

ROLES = ("admin", "engineer", "marketing", "viewer")


def acting(primary: str) -> st.SearchStrategy[str]:
    """Any role, mostly the one whose work the call is (the others mostly get 403)."""
    return st.sampled_from((primary,) * 5 + ROLES)


ENGINEER, MARKETING = acting("engineer"), acting("marketing")
GATED, UNGATED = "production", "development"
ITEMS = ("docs", "announcement", "support_enablement", "sales_briefing")
EXTRA_ITEMS = ("legal", "pricing")
PERCENTS = (0, 0.01, 1, 25, 50, 99.99, 100)
MEMBERS = ("m-1", "m-2", "m-3", "vip-1", "vip-2")
"""Every user key a step may enrol, import or exclude; the sampled users are none of them."""

BOUNDED_RULES: tuple[list[dict[str, Any]], ...] = (
    [],
    [{"attribute": "country", "op": "eq", "values": ["NL"]}],
    [{"attribute": "plan", "op": "in", "values": ["pro", "team"]}],
    [{"attribute": "key", "op": "in", "values": ["vip-1", "vip-2"]}],
    [{"attribute": "beta", "op": "eq", "values": [True]}],
    [
        {"attribute": "country", "op": "eq", "values": ["NL"]},
        {"attribute": "key", "op": "neq", "values": ["\u0001never"]},
    ],
)
CATCH_ALL_RULES: tuple[list[dict[str, Any]], ...] = (
    [{"attribute": "key", "op": "neq", "values": ["\u0001never"]}],
    [{"attribute": "plan", "op": "not_in", "values": ["free"]}],
    [{"attribute": "country", "op": "neq", "values": ["NL"]}],
    [{"attribute": "key", "op": "contains", "values": [""]}],
    [{"attribute": "key", "op": "matches", "values": ["."]}],
    [{"attribute": "key", "op": "starts_with", "values": [""]}],
    [{"attribute": "age", "op": "gt", "values": [-1e300]}],
)
RULES = BOUNDED_RULES + CATCH_ALL_RULES

STRING_VARIATIONS = [
    {"key": "classic", "value": "classic"},
    {"key": "new", "value": "new"},
    {"key": "beta", "value": "beta"},
]
OFF_CHOICES = ("classic", "new", "beta", None)


def _users() -> list[dict[str, Any]]:
    """Contexts no bounded cohort selects: random keys of ten shapes, a few attributes."""
    rng = random.Random(20261203)
    keys: list[str] = []
    for n in range(12):
        keys += [
            str(uuid.UUID(int=rng.getrandbits(128))),
            f"user-{rng.randrange(10**6)}",
            f"{rng.randrange(10**9)}",
            f"p{rng.randrange(10**4)}@example.com",
            "ü" + "ß" * (n + 1),
        ]
    keys += ["x", "Z" * 256]
    contexts: list[dict[str, Any]] = [{"key": key} for key in keys]
    contexts += [{"key": key, "country": "DE", "plan": "free"} for key in keys[:10]]
    contexts += [{}, {"country": "DE"}]
    return contexts


USERS = _users()
assert not {c.get("key") for c in USERS} & set(MEMBERS)


class GateMachine(RuleBasedStateMachine):
    """One flag (boolean or string) in production and development, cohorts around it."""

    def __init__(self, ctx: MachineContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.n = next(ctx.examples)
        self.flag = f"g{self.n}"
        self.cohorts: list[str] = []
        self.typed = False
        self.approved_off: set[Any] = {None}
        """Values outsiders may get while the gate holds: off values the flag had while
        ready or at creation (``None``: the caller's default, or the flag is gone)."""

    # --- helpers --------------------------------------------------------------------

    def call(self, role: str) -> Caller:
        return self.ctx.callers[role]

    def state_path(self, env: str) -> str:
        return f"/api/v1/flags/{self.flag}/environments/{env}"

    def ok(self, response: Any) -> Any:
        assert response.status_code < 500, (response.status_code, response.get_data()[:500])
        return response

    def etag(self, path: str) -> str:
        return str(self.call("admin").get(path).headers["ETag"])

    # --- setup ----------------------------------------------------------------------

    @initialize(typed=st.booleans())
    def create_flag(self, typed: bool) -> None:
        admin = self.call("admin")
        body: dict[str, Any] = {
            "key": self.flag,
            "name": self.flag,
            "flow_item": "feature",
            "key_result_id": self.ctx.key_result,
        }
        if typed:
            body |= {
                "value_type": "string",
                "variations": STRING_VARIATIONS,
                "on_variation": "new",
                "off_variation": "classic",
            }
            self.approved_off.add("classic")
        self.typed = typed
        response = admin.post("/api/v1/flags", json=body)
        assert response.status_code == 201, response.json

    # --- stages -----------------------------------------------------------------------

    @rule(
        role=ENGINEER,
        env=st.sampled_from((GATED, GATED, GATED, UNGATED)),
        stage=st.sampled_from(("early_access", "general", "released")),
        percent=st.none() | st.sampled_from(PERCENTS),
    )
    def move_forward(self, role: str, env: str, stage: str, percent: float | None) -> None:
        body: dict[str, Any] = {"stage": stage}
        if percent is not None and stage == "general":
            body["rollout_percent"] = percent
        self.ok(self.call(role).post(f"{self.state_path(env)}/stage", json=body))

    @rule(role=ENGINEER, stage=st.sampled_from(("off", "early_access", "retired")))
    def step_back(self, role: str, stage: str) -> None:
        """Rollbacks, retiring, and coming back from retired (never gated by stage)."""
        self.ok(self.call(role).post(f"{self.state_path(GATED)}/stage", json={"stage": stage}))

    @rule(role=ENGINEER, kill=st.booleans())
    def kill_or_resume(self, role: str, kill: bool) -> None:
        action = "kill" if kill else "resume"
        self.ok(self.call(role).post(f"{self.state_path(GATED)}/{action}"))

    @rule(role=MARKETING, percent=st.sampled_from(PERCENTS[1:]))
    def schedule_launch(self, role: str, percent: float) -> None:
        at = (self.ctx.clock() + timedelta(minutes=30)).isoformat()
        body = {"launch_at": at, "rollout_percent": percent}
        self.ok(self.call(role).put(f"{self.state_path(GATED)}/launch", json=body))

    @rule()
    def scheduler_runs(self) -> None:
        self.ctx.clock.advance(hours=1)
        scheduler.run_due_launches(self.ctx.state.db, self.ctx.clock)

    # --- cohorts ----------------------------------------------------------------------

    @rule(
        role=ENGINEER,
        rules=st.sampled_from(RULES),
        opt_in=st.booleans(),
        members=st.lists(st.sampled_from(MEMBERS), max_size=2, unique=True),
    )
    def create_cohort(
        self, role: str, rules: list[dict[str, Any]], opt_in: bool, members: list[str]
    ) -> None:
        key = f"c{self.n}-{len(self.cohorts)}"
        body = {"key": key, "name": key, "rules": rules, "opt_in": opt_in}
        if self.ok(self.call(role).post("/api/v1/cohorts", json=body)).status_code == 201:
            self.cohorts.append(key)
            if members:
                self.ok(
                    self.call(role).post(f"/api/v1/cohorts/{key}/members", json={"add": members})
                )

    @precondition(lambda self: bool(self.cohorts))
    @rule(data=st.data(), role=ENGINEER, rules=st.sampled_from(RULES))
    def edit_cohort_rules(self, data: st.DataObject, role: str, rules: list[Any]) -> None:
        key = data.draw(st.sampled_from(self.cohorts))
        path = f"/api/v1/cohorts/{key}"
        self.ok(
            self.call(role).patch(
                path, json={"rules": rules}, headers={"If-Match": self.etag(path)}
            )
        )

    @precondition(lambda self: bool(self.cohorts))
    @rule(
        data=st.data(),
        role=ENGINEER,
        add=st.lists(st.sampled_from(MEMBERS), max_size=2, unique=True),
        remove=st.lists(st.sampled_from(MEMBERS), max_size=2, unique=True),
    )
    def edit_members(
        self, data: st.DataObject, role: str, add: list[str], remove: list[str]
    ) -> None:
        if not (add or remove):
            return
        key = data.draw(st.sampled_from(self.cohorts))
        body = {"add": add, "remove": [k for k in remove if k not in add]}
        self.ok(self.call(role).post(f"/api/v1/cohorts/{key}/members", json=body))

    @rule(data=st.data(), role=ENGINEER, env=st.sampled_from((GATED, UNGATED)))
    def attach_cohorts(self, data: st.DataObject, role: str, env: str) -> None:
        chosen = (
            data.draw(st.lists(st.sampled_from(self.cohorts), unique=True, max_size=3))
            if self.cohorts
            else []
        )
        body: dict[str, Any] = {"cohorts": chosen}
        if self.typed and chosen and data.draw(st.booleans()):
            body["variations"] = {chosen[0]: data.draw(st.sampled_from(("new", "beta")))}
        path = self.state_path(env)
        self.ok(
            self.call(role).put(f"{path}/cohorts", json=body, headers={"If-Match": self.etag(path)})
        )

    @rule(
        role=ENGINEER,
        users=st.lists(st.sampled_from(MEMBERS), max_size=3, unique=True),
    )
    def set_exclusions(self, role: str, users: list[str]) -> None:
        path = self.state_path(GATED)
        self.ok(
            self.call(role).put(
                f"{path}/exclusions", json={"users": users}, headers={"If-Match": self.etag(path)}
            )
        )

    @precondition(lambda self: bool(self.cohorts))
    @rule(
        data=st.data(),
        env=st.sampled_from((GATED, UNGATED)),
        user=st.sampled_from(MEMBERS),
        enrol=st.booleans(),
    )
    def enrol_or_leave(self, data: st.DataObject, env: str, user: str, enrol: bool) -> None:
        cohort = data.draw(st.sampled_from(self.cohorts))
        path = "/sdk/v1/enroll" if enrol else "/sdk/v1/leave"
        body = {"cohort": cohort, "context": {"key": user}}
        self.ok(self.ctx.callers[f"sdk:{env}"].post(path, json=body))

    # --- readiness ----------------------------------------------------------------------

    @rule(
        role=MARKETING,
        item=st.sampled_from(ITEMS + EXTRA_ITEMS),
        done=st.booleans(),
    )
    def mark(self, role: str, item: str, done: bool) -> None:
        path = f"/api/v1/flags/{self.flag}/readiness/{item}"
        self.ok(self.call(role).put(path, json={"done": done}))

    @rule(role=MARKETING)
    def make_ready(self, role: str) -> None:
        """Every item of the checklist done (four marks by hand are rare in random steps)."""
        readiness = self.call("admin").get(f"/api/v1/flags/{self.flag}/readiness").json
        for item in readiness["items"]:
            path = f"/api/v1/flags/{self.flag}/readiness/{item['key']}"
            self.ok(self.call(role).put(path, json={"done": True}))

    @rule(
        role=MARKETING,
        items=st.lists(
            st.tuples(st.sampled_from(ITEMS + EXTRA_ITEMS), st.booleans()),
            min_size=1,
            max_size=5,
            unique_by=lambda item: item[0],
        ),
    )
    def replace_checklist(self, role: str, items: list[tuple[str, bool]]) -> None:
        path = f"/api/v1/flags/{self.flag}/readiness"
        body = {"items": [{"key": k, "label": k, "required": r} for k, r in items]}
        self.ok(self.call(role).put(path, json=body, headers={"If-Match": self.etag(path)}))

    @precondition(lambda self: self.typed)
    @rule(role=ENGINEER, off=st.sampled_from(OFF_CHOICES))
    def change_off_variation(self, role: str, off: str | None) -> None:
        path = f"/api/v1/flags/{self.flag}"
        body = {"variations": STRING_VARIATIONS, "on_variation": "new", "off_variation": off}
        self.ok(
            self.call(role).put(
                f"{path}/variations", json=body, headers={"If-Match": self.etag(path)}
            )
        )

    # --- the invariant --------------------------------------------------------------------

    @invariant()
    def nobody_unpicked_is_on_before_ready(self) -> None:
        ready, missing, off = self.ctx.readiness(self.flag)
        if self.typed and ready:
            self.approved_off.add(off)
        if ready:
            return
        snapshot = self.ctx.snapshot()
        for context in USERS:
            result = evaluate(snapshot, self.flag, context)
            assert not result.enabled, (
                f"{context} is on ({result.reason}, cohort {result.matched_cohort}) "
                f"with readiness missing {missing}: "
                f"{self.call('admin').get(self.state_path(GATED)).json}"
            )
            if self.typed:
                assert result.value in self.approved_off, (
                    f"{context} gets {result.value!r} (approved: {self.approved_off}) "
                    f"with readiness missing {missing}"
                )


class MachineContext:
    """What every example shares: the app, one caller per credential, the clock."""

    def __init__(self, app: Any, secrets: dict[str, str], clock: Any) -> None:
        client = app.test_client()
        self.callers = {name: Caller(client, secret) for name, secret in secrets.items()}
        self.state: AppState = app.extensions["flagsvc"]
        self.clock = clock
        self.examples = itertools.count()
        self._snapshot: tuple[str, Snapshot] | None = None
        admin = self.callers["admin"]
        objective = admin.post(
            "/api/v1/objectives", json={"title": "O", "period": "2026-Q4", "owner": "t"}
        ).json
        self.key_result = admin.post(
            f"/api/v1/objectives/{objective['id']}/key-results",
            json={"title": "K", "metric": "m", "baseline": 0, "target": 1},
        ).json["id"]

    def readiness(self, flag_key: str) -> tuple[bool, list[str], Any]:
        """Whether the flag is ready, what it misses, and the value it serves when off.

        Read from the service, as ``GET .../readiness`` reads it: the property is about
        what SDKs are sent, and tests/api/test_readiness.py covers the endpoint.
        """
        with self.state.db.read() as session:
            flag = readiness.get_readiness(session, flag_key)
            off = next(
                (v["value"] for v in flag.variations if v["key"] == flag.off_variation), None
            )
            return is_ready(flags.checklist(flag)), flags.missing_readiness(flag), off

    def snapshot(self) -> Snapshot:
        """Production's snapshot as an SDK keeps it: fetched with If-None-Match."""
        headers = {"If-None-Match": self._snapshot[0]} if self._snapshot else {}
        response = self.callers[f"sdk:{GATED}"].get("/sdk/v1/snapshot", headers=headers)
        if response.status_code == 304 and self._snapshot:
            return self._snapshot[1]
        assert response.status_code == 200, response.status_code
        self._snapshot = (response.headers["ETag"], load_snapshot(response.json))
        return self._snapshot[1]


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"enroll_limit": 100_000}


def test_gate_machine__random_calls_by_every_role__nobody_unpicked_is_on_before_ready(
    app, secrets, clock
):
    ctx = MachineContext(app, secrets, clock)
    run_state_machine_as_test(
        lambda: GateMachine(ctx),
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
