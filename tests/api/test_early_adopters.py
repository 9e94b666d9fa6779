"""Early-adopter evidence through HTTP: SDKs send hashed user keys with their metrics,
the promise board (JSON, CSV, Atom) and the flag page show distinct early adopters."""

from __future__ import annotations

import csv
import io

import pytest
from flagsvc_sdk._metrics import adopter_hash

from tests.api import flow_history

HASHES = [adopter_hash("flag-c", f"user-{n}") for n in range(40)]


def _entry(clock, adopters, cohort=30):
    return {
        "flag": "flag-c",
        "count": 40,
        "last_evaluated_at": clock().isoformat(),
        "reasons": {"COHORT": cohort},
        "early_adopters": adopters,
    }


def build_with_adopters(engineer, marketing, clock, sdk):
    """The scripted history; flag-c then reported for 40 users in two batches."""
    ids = flow_history.build(engineer, marketing, clock)
    for adopters in (HASHES[:25], HASHES[10:]):  # two batches, 15 users in both
        response = sdk.post("/sdk/v1/metrics", json={"evaluations": [_entry(clock, adopters)]})
        assert response.status_code == 202, response.json
    return ids


@pytest.fixture
def history(engineer, marketing, clock, sdk):
    return build_with_adopters(engineer, marketing, clock, sdk)


def test_board__distinct_early_adopters_and_evaluations(history, marketing):
    (item,) = marketing.get("/api/v1/promise-board").json["items"]
    assert item["flag"] == "flag-c"
    assert item["early_adopters_seen"] == 40  # small counts are exact
    assert (item["evaluations"], item["early_access_evaluations"]) == (80, 60)
    rows = list(csv.DictReader(io.StringIO(
        marketing.get("/api/v1/promise-board?format=csv").get_data(as_text=True)
    )))  # fmt: skip
    assert rows[0]["early_adopters_seen"] == "40" and rows[0]["early_access_evaluations"] == "60"
    atom = marketing.get("/api/v1/promise-board?format=atom").get_data(as_text=True)
    assert "(40 seen by the SDKs)" in atom and "(60 through early access)" in atom


@pytest.mark.parametrize(
    "adopters",
    [
        ["user-1"],  # a raw key: refused, the service never takes one
        ["0123456789ABCDEF"],  # upper case: not what the SDK sends
        ["0123456789abcde"],  # 15 digits
        [1234],
        "0123456789abcdef",
        ["0123456789abcdef"] * 10_001,
    ],
)
def test_metrics__bad_early_adopters__422_names_the_field(history, sdk, clock, adopters):
    response = sdk.post("/sdk/v1/metrics", json={"evaluations": [_entry(clock, adopters)]})
    assert response.status_code == 422, response.json
    assert "early_adopters" in str(response.json["errors"]["json"]["evaluations"])


def test_metrics__bad_batch__nothing_counted(history, sdk, clock, marketing):
    bad = [_entry(clock, [adopter_hash("flag-c", "new")]), _entry(clock, ["raw-key"])]
    assert sdk.post("/sdk/v1/metrics", json={"evaluations": bad}).status_code == 422
    (item,) = marketing.get("/api/v1/promise-board").json["items"]
    assert item["early_adopters_seen"] == 40 and item["early_access_evaluations"] == 60
