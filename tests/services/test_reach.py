"""Early-access reach from SDK metrics batches: a 24-hour ring of hourly counts."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flagsvc.services import reach
from flagsvc.services import sdk_metrics
from flagsvc.services.reach import Reach
from tests.conftest import create_flag

FLAG = "checkout"


def _entry(count: int, cohort: int | None, clock) -> dict[str, Any]:
    entry: dict[str, Any] = {"flag": FLAG, "count": count, "last_evaluated_at": clock().isoformat()}
    if cohort is not None:
        entry["reasons"] = {"COHORT": cohort}
    return entry


def _report(caller, clock, count: int, cohort: int | None = None) -> Any:
    return caller.post("/sdk/v1/metrics", json={"evaluations": [_entry(count, cohort, clock)]})


def _reach(app, clock) -> dict[str, Reach]:
    with app.extensions["flagsvc"].db.read() as session:
        return reach.reach_by_environment(session, FLAG, clock())


@pytest.fixture
def flag(engineer) -> None:
    create_flag(engineer, FLAG)


def test_reach__batches_of_two_environments__added_per_environment(
    app, flag, sdk, client, secrets, clock
):
    staging = type(sdk)(client, secrets["sdk:staging"])
    assert _report(sdk, clock, 100, 30).status_code == 202
    assert _report(sdk, clock, 50, 5).status_code == 202
    assert _report(staging, clock, 10).status_code == 202  # no reasons: none on by a cohort
    assert _reach(app, clock) == {"production": Reach(150, 35), "staging": Reach(10, 0)}
    assert _reach(app, clock)["production"].percent == pytest.approx(100 * 35 / 150)


def test_reach__hours_go_by__only_the_last_24_count(app, flag, sdk, clock):
    _report(sdk, clock, 100, 100)  # hour 0: all by the cohort
    clock.advance(hours=1)
    _report(sdk, clock, 100, 0)
    clock.advance(hours=23)  # hour 24: hour 0's slot is a day old and starts again
    assert _reach(app, clock)["production"] == Reach(100, 0)
    _report(sdk, clock, 10, 1)
    assert _reach(app, clock)["production"] == Reach(110, 1)
    clock.advance(hours=30)
    assert _reach(app, clock) == {}


def test_reach__batch_for_an_hour_already_overwritten__kept_out(app, flag, sdk, clock):
    day_ago = clock()
    clock.advance(hours=24)
    _report(sdk, clock, 5)  # day_ago's slot now holds this hour
    late = [sdk_metrics.EvaluationCount(FLAG, 7, day_ago, 7)]
    with app.extensions["flagsvc"].db.write() as session:  # an instance a day behind
        sdk_metrics.record_evaluations(
            session, "production", late, day_ago, app.extensions["flagsvc"].early_adopters
        )
    assert _reach(app, clock)["production"] == Reach(5, 0)


@pytest.mark.parametrize(
    "reasons",
    [{"COHORT": 11}, {"COHORT": -1}, {"COHORT": "3"}, {"COHORT": 1.5}, {"ROLLOUT": 1}, ["COHORT"]],
)
def test_metrics__bad_reasons__422_names_evaluations(flag, sdk, clock, reasons):
    entry = {**_entry(10, None, clock), "reasons": reasons}
    response = sdk.post("/sdk/v1/metrics", json={"evaluations": [entry]})
    assert response.status_code == 422, response.json
    assert "evaluations" in response.json["errors"]["json"]


def _record(state, batch, times: int, errors: list) -> None:
    try:
        for _ in range(times):
            with state.db.write() as session:
                sdk_metrics.record_evaluations(
                    session, "production", batch, state.clock(), state.early_adopters
                )
    except BaseException as error:
        errors.append(error)


def test_reach__concurrent_batches__no_increment_lost(app, flag, engineer, clock):
    create_flag(engineer, "other")
    state, errors = app.extensions["flagsvc"], []
    batch = [sdk_metrics.EvaluationCount(key, 2, clock(), 1) for key in ("other", FLAG, FLAG)]
    threads = [threading.Thread(target=_record, args=(state, batch, 10, errors)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _reach(app, clock)["production"] == Reach(240, 120)
