"""Objectives and key results through HTTP."""

from __future__ import annotations

OBJECTIVE = {"title": "Delight power users", "period": "2026-Q4", "owner": "growth"}
KEY_RESULT = {
    "title": "Weekly active power users",
    "metric": "wau_power",
    "baseline": 1000,
    "target": 1500,
    "unit": "users",
}


def _objective(caller):
    response = caller.post("/api/v1/objectives", json=OBJECTIVE)
    assert response.status_code == 201, response.json
    return response.json


def test_objective__created_with_key_result__listed_with_progress(engineer, viewer):
    objective = _objective(engineer)
    kr = engineer.post(f"/api/v1/objectives/{objective['id']}/key-results", json=KEY_RESULT)
    assert kr.status_code == 201
    assert kr.json["current"] == 1000 and kr.json["progress"] == 0.0
    listed = viewer.get("/api/v1/objectives").json
    assert listed["next_cursor"] is None
    assert listed["items"][0]["key_results"][0]["title"] == KEY_RESULT["title"]


def test_objective__due_date_sent__400_explains_no_promised_dates(engineer):
    response = engineer.post("/api/v1/objectives", json={**OBJECTIVE, "due_date": "2026-12-24"})
    assert response.status_code == 400
    assert "due_date" in response.json["errors"]["json"]
    assert "does not store due or target dates" in response.json["message"]


def test_key_result__target_date_sent__400(engineer):
    objective = _objective(engineer)
    body = {**KEY_RESULT, "target_date": "2026-12-01"}
    response = engineer.post(f"/api/v1/objectives/{objective['id']}/key-results", json=body)
    assert response.status_code == 400


def test_objective_patch__without_if_match__428_then_stale__412_then_ok(engineer):
    objective = _objective(engineer)
    path = f"/api/v1/objectives/{objective['id']}"
    assert engineer.patch(path, json={"title": "x"}).status_code == 428
    etag = engineer.get(path).headers["ETag"]
    assert (
        engineer.patch(path, json={"title": "First"}, headers={"If-Match": etag}).status_code == 200
    )
    stale = engineer.patch(path, json={"title": "Second"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert engineer.get(path).json["title"] == "First"


def test_key_result_patch__current_moves__progress_and_audit(engineer, viewer):
    objective = _objective(engineer)
    kr = engineer.post(f"/api/v1/objectives/{objective['id']}/key-results", json=KEY_RESULT).json
    path = f"/api/v1/key-results/{kr['id']}"
    etag = engineer.get(path).headers["ETag"]
    response = engineer.patch(path, json={"current": 1250}, headers={"If-Match": etag})
    assert response.json["progress"] == 0.5
    events = viewer.get("/api/v1/audit?action=key_result.updated").json["items"]
    assert events[0]["before"] == {"current": 1000.0} and events[0]["after"] == {"current": 1250.0}


def test_objective__bad_fields__422_names_each(engineer):
    response = engineer.post("/api/v1/objectives", json={"title": "", "period": "Q4", "extra": 1})
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"title", "period", "owner", "extra"}


def test_key_result__nan_and_missing_objective__422_and_404(engineer):
    objective = _objective(engineer)
    bad = engineer.post(
        f"/api/v1/objectives/{objective['id']}/key-results",
        data='{"title":"t","metric":"m","baseline":NaN,"target":1}',
        content_type="application/json",
    )
    assert bad.status_code in (400, 422)
    missing = engineer.post("/api/v1/objectives/9999/key-results", json=KEY_RESULT)
    assert missing.status_code == 404


def test_objectives__marketing_cannot_write_but_reads(marketing):
    assert marketing.post("/api/v1/objectives", json=OBJECTIVE).status_code == 403
    assert marketing.get("/api/v1/objectives").status_code == 200
