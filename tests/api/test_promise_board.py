"""The promise board through HTTP, on the scripted history of ``flow_history`` plus:

- day 5: G (feature) → early access; day 12 G killed; day 13 G resumed;
- day 17: K (feature) → early access; day 18 K killed (and stays killed);
- day 18: F (feature) → early access (2 days: not proven yet);
- C (feature, early access since day 4, never ready) gets the beta testers (u1 u2 u3).

At day 20 only C is proven and quiet (safe since day 11); G becomes safe at day 26
(its kill + 14 quiet days), or at day 19 with ``quiet_days=7``.
"""

from __future__ import annotations

import csv
import io
from xml.etree import ElementTree

import pytest

from tests.api import flow_history
from tests.api.flow_history import create_flag
from tests.api.flow_history import flag_path
from tests.api.flow_history import move

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def history(engineer, marketing, clock, sdk):
    def extra(krs):
        def cohort_for_c():
            path = flag_path("flag-c")
            etag = engineer.get(path).headers["ETag"]
            response = engineer.put(
                f"{path}/cohorts", json={"cohorts": ["beta-testers"]}, headers={"If-Match": etag}
            )
            assert response.status_code == 200, response.json

        return [
            *[(0, lambda key=key: create_flag(engineer, key, "feature", krs[0]))
              for key in ("flag-g", "flag-k", "flag-f")],
            (4, cohort_for_c),
            (5, lambda: move(engineer, "flag-g", "early_access")),
            (12, lambda: engineer.post(f"{flag_path('flag-g')}/kill")),
            (13, lambda: engineer.post(f"{flag_path('flag-g')}/resume")),
            (17, lambda: move(engineer, "flag-k", "early_access")),
            (18, lambda: engineer.post(f"{flag_path('flag-k')}/kill")),
            (18, lambda: move(engineer, "flag-f", "early_access")),
        ]  # fmt: skip

    ids = flow_history.build(engineer, marketing, clock, extra, name="promise_board_history")
    report = {"flag": "flag-c", "count": 40, "last_evaluated_at": clock().isoformat(),
              "reasons": {"COHORT": 30}}  # fmt: skip
    assert sdk.post("/sdk/v1/metrics", json={"evaluations": [report]}).status_code == 202
    return ids


def test_board__only_proven_quiet_features__with_evidence(history, marketing):
    body = marketing.get("/api/v1/promise-board").json
    assert body["environment"] == "production" and body["min_days"] == 7
    (item,) = body["items"]
    assert item["flag"] == "flag-c" and item["stage"] == "early_access"
    assert item["days_in_early_access"] == 16.0
    assert item["safe_since"].startswith("2026-10-12T09:00:00")  # day 4 + 7
    assert item["early_adopters"] == 3
    assert (item["evaluations"], item["evaluations_24h"], item["early_access_evaluations_24h"]) == (
        40, 40, 30,
    )  # fmt: skip
    assert item["last_killed_at"] is None
    assert item["readiness"] == {
        "ready": False, "done": 0, "total": 4, "missing": flow_history.ITEMS
    }  # fmt: skip
    assert item["objective"] == "Reliable platform" and item["key_result"] == "uptime"


def test_board__a_recent_kill_keeps_a_feature_off_until_quiet(history, viewer):
    flags = [i["flag"] for i in viewer.get("/api/v1/promise-board?quiet_days=7").json["items"]]
    assert flags == ["flag-g", "flag-c"]  # newest safe first: G since day 19
    g = viewer.get("/api/v1/promise-board?quiet_days=7").json["items"][0]
    assert g["last_killed_at"].startswith("2026-10-13T09:00:00")


def test_board__nothing_unfinished_ever_appears(history, viewer):
    everything = viewer.get("/api/v1/promise-board?min_days=0&quiet_days=0").json["items"]
    flags = {i["flag"] for i in everything}
    # F is young but in early access (min_days 0); K is killed now; A and B are released;
    # D never left off; E is debt
    assert flags == {"flag-c", "flag-g", "flag-f"}
    assert viewer.get("/api/v1/promise-board?environment=staging").json["items"] == []


def test_board__csv_and_atom__same_items(history, viewer):
    text = viewer.get("/api/v1/promise-board?format=csv&quiet_days=7")
    assert text.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(text.get_data(as_text=True))))
    assert [r["flag"] for r in rows] == ["flag-g", "flag-c"]
    assert rows[1]["early_adopters"] == "3" and rows[1]["readiness_total"] == "4"
    atom = viewer.get("/api/v1/promise-board?format=atom&quiet_days=7")
    assert atom.mimetype == "application/atom+xml"
    feed = ElementTree.fromstring(atom.get_data())
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == [
        "urn:flagsvc:promise:production:flag-g", "urn:flagsvc:promise:production:flag-c"
    ]  # fmt: skip
    assert entries[1].findtext(f"{ATOM}updated").startswith("2026-10-12T09:00:00")
    assert "on for 3 early adopters" in entries[1].findtext(f"{ATOM}summary")


@pytest.mark.parametrize(
    ("query", "field"),
    [("min_days=-1", "min_days"), ("format=rss", "format"), ("quiet_days=x", "quiet_days")],
)
def test_board__bad_query__422_names_the_field(viewer, query, field):
    response = viewer.get(f"/api/v1/promise-board?{query}")
    assert response.status_code == 422 and field in response.json["errors"]["query"]


def test_board__unknown_environment__404(viewer):
    assert viewer.get("/api/v1/promise-board?environment=mars").status_code == 404


def test_board__sdk_keys_refused(sdk):
    assert sdk.get("/api/v1/promise-board").status_code in (401, 403)
