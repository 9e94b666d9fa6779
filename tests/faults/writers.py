"""Admin writes under faults, a ledger of every attempt, and the check against the database.

An ``AdminWriter`` thread alternates the two kinds of change the issue names: a stage
move (a new general ramp on its own flag) and a member import (new user keys into a
cohort). Each request carries its own ``X-Request-ID``, which the audit event records,
so after the fault every attempt can be matched to what the database holds:

- acknowledged (2xx): its audit event exists, and so does its effect;
- anything else (503, no answer because the process died): all of it or none of it.

The database is read with plain SQL, not through the service: the service is what is
under test.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx
import psycopg

from tests.live_helpers import create_cohort
from tests.live_helpers import create_flag
from tests.live_helpers import set_cohorts
from tests.live_helpers import state_path


@dataclass(frozen=True, slots=True)
class Attempt:
    """One write request and what came back (``status`` None: no response at all)."""

    request_id: str
    kind: str  # "ramp" or "members"
    status: int | None
    at: float
    percent: float | None = None
    keys: tuple[str, ...] = ()
    body: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class AdminWriter:
    """A thread making admin changes continuously through one service."""

    base_url: str
    token: str
    ramp_flag: str
    cohort: str
    environment: str = "staging"
    keys_per_import: int = 20
    pause: float = 0.005
    pause_after_failure: float = 0.05  # keeps trying through an outage, without a flood
    attempts: list[Attempt] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> AdminWriter:
        self._thread = threading.Thread(target=self._run, name=f"writer-{self.ramp_flag}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def acknowledged(self, since: float = 0.0) -> list[Attempt]:
        return [a for a in self.attempts if a.acknowledged and a.at >= since]

    def statuses(self) -> set[int | None]:
        return {a.status for a in self.attempts}

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=10) as http:
            for number in itertools.count():
                if self._stop.is_set():
                    return
                write = self._ramp if number % 2 == 0 else self._import
                attempt = write(http, number)
                self.attempts.append(attempt)
                time.sleep(self.pause if attempt.acknowledged else self.pause_after_failure)

    def _ramp(self, http: httpx.Client, number: int) -> Attempt:
        """A new general ramp: never the one before it (an unchanged ramp would be 409)."""
        percent = float(1 + (number // 2) % 99)
        path = f"{state_path(self.ramp_flag, self.environment)}/stage"
        body = {"stage": "general", "rollout_percent": percent}
        return self._send(http, "ramp", path, body, percent=percent)

    def _import(self, http: httpx.Client, number: int) -> Attempt:
        prefix = f"{self.ramp_flag}-{number}"
        keys = tuple(f"{prefix}-{i}" for i in range(self.keys_per_import))
        path = f"/api/v1/cohorts/{self.cohort}/members"
        return self._send(http, "members", path, {"add": list(keys)}, keys=keys)

    def _send(
        self, http: httpx.Client, kind: str, path: str, body: dict[str, Any], **what: Any
    ) -> Attempt:
        request_id = f"fault-{uuid.uuid4().hex}"
        try:
            response = http.post(path, json=body, headers={"X-Request-ID": request_id})
        except httpx.TransportError as error:
            return Attempt(request_id, kind, None, time.monotonic(), body=repr(error), **what)
        return Attempt(
            request_id, kind, response.status_code, time.monotonic(), body=response.text, **what
        )


@dataclass(frozen=True, slots=True)
class Stored:
    """What the database holds, read directly."""

    events: dict[str, list[tuple[str, str | None, Any]]]  # request id -> (action, flag, after)
    members: set[str]
    last_ramp: dict[tuple[str, str], float]  # (flag, environment) -> newest stage event's ramp

    @classmethod
    def read(cls, database_url: str, cohort: str) -> Stored:
        events: dict[str, list[tuple[str, str | None, Any]]] = {}
        last_ramp: dict[tuple[str, str], float] = {}
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT request_id, action, flag_key, environment, after"
                " FROM audit_events ORDER BY seq"
            ).fetchall()
            members = conn.execute(
                "SELECT m.user_key FROM cohort_members m"
                " JOIN cohorts c ON c.id = m.cohort_id WHERE c.key = %s",
                (cohort,),
            ).fetchall()
        for request_id, action, flag_key, environment, after in rows:
            events.setdefault(request_id, []).append((action, flag_key, after))
            if action == "flag.stage_changed":
                last_ramp[(flag_key, environment)] = float(after["rollout_percent"])
        return cls(events, {key for (key,) in members}, last_ramp)


def check_all_or_nothing(stored: Stored, attempts: Iterable[Attempt]) -> dict[str, int]:
    """Every acknowledged write is stored; every other one is stored wholly or not at all.

    Returns counts by outcome, for the test's own assertions and its failure messages.
    """
    counts = {"acknowledged": 0, "unacknowledged_committed": 0, "unacknowledged_absent": 0}
    for attempt in attempts:
        audited = attempt.request_id in stored.events
        if attempt.kind == "members":
            present = stored.members.issuperset(attempt.keys)
            absent = stored.members.isdisjoint(attempt.keys)
            assert (audited and present) or (not audited and absent), (
                f"half-written import {attempt}: audited={audited}, present={present}"
            )
        if attempt.acknowledged:
            assert audited, f"acknowledged write missing from the audit: {attempt}"
            counts["acknowledged"] += 1
        else:
            counts["unacknowledged_committed" if audited else "unacknowledged_absent"] += 1
    return counts


def check_state_matches_audit(http: httpx.Client, stored: Stored) -> None:
    """Each flag's ramp now is the one its newest audit event says, in every environment."""
    for (flag, environment), percent in stored.last_ramp.items():
        state = http.get(state_path(flag, environment))
        assert state.status_code == 200, state.text
        assert state.json()["rollout_percent"] == percent, (flag, state.json(), percent)


def seed_release(admin: httpx.Client, ramp_flag: str, beta_flag: str, cohort: str) -> None:
    """What the writers change: a flag at a 50 % general ramp in production, and a flag in
    early access in staging for ``cohort`` (whose member imports are the other writes)."""
    create_flag(admin, ramp_flag, rollout_percent=50)
    create_flag(admin, beta_flag, stage="off")
    create_cohort(admin, cohort)
    set_cohorts(admin, beta_flag, "staging", [cohort])
    moved = admin.post(f"{state_path(beta_flag, 'staging')}/stage", json={"stage": "early_access"})
    assert moved.status_code == 200, moved.text
