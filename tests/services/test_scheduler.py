"""Scheduled launches: the ramp they start at, and the scheduler that runs them exactly once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from flagsvc.cli import main
from flagsvc.services import scheduler
from tests.api import flow_history
from tests.api.flow_history import flag_path
from tests.api.flow_history import move


def _ready_in_early_access(engineer, marketing, key: str, kr: int) -> None:
    flow_history.create_flag(engineer, key, "feature", kr)
    flow_history.make_ready(marketing, key)
    move(engineer, key, "early_access")


def _schedule(marketing, clock, key: str, days: float = 2, **extra: Any) -> Any:
    at = (clock.now + timedelta(days=days)).isoformat()
    return marketing.put(f"{flag_path(key)}/launch", json={"launch_at": at, **extra})


def _run(app, clock) -> list[scheduler.LaunchOutcome]:
    return scheduler.run_due_launches(app.extensions["flagsvc"].db, clock)


def _events(viewer, action: str, key: str | None = None) -> list[dict[str, Any]]:
    flag = f"&flag={key}" if key else ""
    return viewer.get(f"/api/v1/audit?action={action}{flag}&limit=500").json["items"]


@pytest.fixture
def kr(engineer) -> int:
    return flow_history.objective(engineer, "Launches", ["k"])[1][0]


@pytest.fixture
def launchable(engineer, marketing, kr) -> str:
    _ready_in_early_access(engineer, marketing, "launch-me", kr)
    return "launch-me"


# --- the launch's ramp ----------------------------------------------------------------


def test_launch__rollout_percent__stored_shown_and_audited(launchable, marketing, viewer, clock):
    response = _schedule(marketing, clock, launchable, rollout_percent=25)
    assert response.status_code == 200, response.json
    assert response.json["launch_rollout_percent"] == 25
    (event,) = _events(viewer, "flag.launch_scheduled")
    assert event["after"]["rollout_percent"] == 25
    again = _schedule(marketing, clock, launchable, rollout_percent=40)  # same time, new ramp
    assert again.json["launch_rollout_percent"] == 40
    assert len(_events(viewer, "flag.launch_scheduled")) == 2


def test_launch__rollout_percent_omitted__100(launchable, marketing, clock):
    assert _schedule(marketing, clock, launchable).json["launch_rollout_percent"] == 100


@pytest.mark.parametrize("percent", [0, -5, 100.5, 12.345, "lots"])
def test_launch__bad_rollout_percent__422(launchable, marketing, clock, percent):
    response = _schedule(marketing, clock, launchable, rollout_percent=percent)
    assert response.status_code == 422 and "rollout_percent" in response.json["errors"]["json"]


# --- running ----------------------------------------------------------------------------


def test_scheduler__due_launch__general_at_its_ramp_audited_as_scheduler(
    app, launchable, marketing, viewer, clock
):
    planned = _schedule(marketing, clock, launchable, rollout_percent=25).json["launch_at"]
    assert _run(app, clock) == []  # not due yet
    clock.advance(days=2, minutes=5)
    (outcome,) = _run(app, clock)
    assert outcome.ran and outcome.flag_key == launchable
    state = viewer.get(flag_path(launchable)).json
    assert (state["stage"], state["rollout_percent"], state["launch_at"]) == ("general", 25, None)
    (ran,) = _events(viewer, "flag.launch_ran")
    assert ran["actor"] == "scheduler" and ran["actor_role"] == "system"
    assert ran["after"] == {
        "planned_at": planned, "ran_at": clock.now.isoformat(), "rollout_percent": 25.0
    }  # fmt: skip
    moved = _events(viewer, "flag.stage_changed", launchable)[-1]
    assert moved["actor"] == "scheduler" and moved["after"]["stage"] == "general"
    assert _run(app, clock) == []  # nothing left: it ran once


def test_scheduler__cancelled_launch__does_not_run(app, launchable, marketing, viewer, clock):
    _schedule(marketing, clock, launchable)
    assert marketing.delete(f"{flag_path(launchable)}/launch").status_code == 200
    clock.advance(days=3)
    assert _run(app, clock) == []
    assert viewer.get(flag_path(launchable)).json["stage"] == "early_access"
    assert _events(viewer, "flag.launch_ran") == []


def test_scheduler__readiness_lost__skipped_with_reason(app, launchable, marketing, viewer, clock):
    _schedule(marketing, clock, launchable)
    body = {"done": False}
    assert marketing.put(f"/api/v1/flags/{launchable}/readiness/docs", json=body).status_code == 200
    clock.advance(days=3)
    (outcome,) = _run(app, clock)
    assert not outcome.ran and "no longer ready" in (outcome.reason or "")
    state = viewer.get(flag_path(launchable)).json
    assert state["stage"] == "early_access" and state["launch_at"] is None
    (skipped,) = _events(viewer, "flag.launch_skipped")
    assert skipped["actor"] == "scheduler" and "docs" in skipped["after"]["reason"]
    assert _events(viewer, "flag.launch_ran") == [] and _run(app, clock) == []


def test_scheduler__killed_flag__skipped(app, launchable, engineer, marketing, viewer, clock):
    _schedule(marketing, clock, launchable)
    assert engineer.post(f"{flag_path(launchable)}/kill").status_code == 200
    clock.advance(days=3)
    (outcome,) = _run(app, clock)
    assert not outcome.ran and outcome.reason == "the kill switch is on"
    assert viewer.get(flag_path(launchable)).json["stage"] == "early_access"


def test_scheduler__left_early_access__launch_dropped_never_runs(
    app, launchable, engineer, marketing, viewer, clock
):
    _schedule(marketing, clock, launchable)
    move(engineer, launchable, "off")  # a rollback drops the plan with it
    clock.advance(days=3)
    assert _run(app, clock) == []
    assert viewer.get(flag_path(launchable)).json["stage"] == "off"


def _race(database, clock, schedulers: int = 2) -> list[scheduler.LaunchOutcome]:
    """Several schedulers started together, each passing over the due launches a few times."""
    start, outcomes = threading.Barrier(schedulers), []

    def run() -> None:
        start.wait()
        for _ in range(5):  # keep looking after the queue drained
            outcomes.extend(scheduler.run_due_launches(database, clock))

    threads = [threading.Thread(target=run) for _ in range(schedulers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def test_schedulers__two_racing__each_due_launch_runs_exactly_once(
    app, engineer, marketing, viewer, kr, clock
):
    keys = [f"race-{n:02d}" for n in range(24)]
    for n, key in enumerate(keys):
        _ready_in_early_access(engineer, marketing, key, kr)
        assert _schedule(marketing, clock, key, days=1 + n / 1000).status_code == 200
    clock.advance(days=2)
    outcomes = _race(app.extensions["flagsvc"].db, clock)
    assert sorted(o.flag_key for o in outcomes) == keys
    assert sorted(e["flag_key"] for e in _events(viewer, "flag.launch_ran")) == keys
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True


def test_scheduler__background_thread__runs_then_stops(app, launchable, marketing, viewer, clock):
    _schedule(marketing, clock, launchable)
    clock.advance(days=3)
    stop = scheduler.start_in_background(app.extensions["flagsvc"].db, clock, interval=0.05)
    try:
        for _ in range(400):
            if viewer.get(flag_path(launchable)).json["stage"] == "general":
                break
            time.sleep(0.05)  # waiting on a real thread, not on the clock
    finally:
        stop.set()
    assert viewer.get(flag_path(launchable)).json["stage"] == "general"


def test_cli_scheduler__once__runs_due_launches_and_exits(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env={"DATABASE_URL": url}).exit_code == 0
    result = runner.invoke(main, ["scheduler", "--once"], env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "0 launches" in result.stderr
