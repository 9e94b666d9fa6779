"""Bad input gets a 4xx naming the field, never a 500 (issue 10 §4).

Each case here was a 500 (or an invalid answer) before its fix: forged cursors past the
integer columns, periods at the ends of the calendar, JSON integers Python refuses to
parse, a 405 without ``Allow``. The app runs with ``testing`` on, so an unhandled
exception fails the test instead of turning into a 500 page.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import marshmallow as ma
import pytest
from marshmallow import validate

from flagsvc.storage.models import KeyResult
from flagsvc.web.schemas import StrictBoolean
from flagsvc.web.schemas import StrictDecimal
from flagsvc.web.schemas import StrictFloat
from tests.conftest import Caller
from tests.conftest import create_flag

INT32_PAST = 2**31
INT64_PAST = 2**63
HUGE = 10**40
HUGE_DIGITS = "9" * 4_400  # past Python's 4,300-digit limit for int()


def forged(position: int) -> str:
    """A cursor in the API's own format for a position it never issued."""
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def _names_field(body: Any, field: str) -> bool:
    return any(field in where for where in (body.get("errors") or {}).values())


# --- forged cursors ---------------------------------------------------------------------


@pytest.fixture
def listed(admin):
    """One of everything that pages, so a query reaches the database."""
    create_flag(admin, "f1")
    admin.post("/api/v1/cohorts", json={"key": "c1", "name": "C", "rules": []})


@pytest.mark.parametrize("position", [INT32_PAST, INT64_PAST, HUGE])
@pytest.mark.parametrize(
    "path", ["/api/v1/flags", "/api/v1/cohorts", "/api/v1/objectives", "/api/v1/cohorts/c1/members"]
)
def test_cursor__past_the_id_column__422_naming_cursor(listed, viewer, path, position):
    response = viewer.get(path, query_string={"cursor": forged(position)})
    assert response.status_code == 422, response.json
    assert response.json["errors"]["query"]["cursor"]


@pytest.mark.parametrize("position", [INT64_PAST, HUGE])
@pytest.mark.parametrize("fmt", ["json", "csv", "ndjson"])
def test_audit_cursor__past_64_bits__422_naming_cursor(listed, viewer, fmt, position):
    response = viewer.get("/api/v1/audit", query_string={"cursor": forged(position), "format": fmt})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["errors"]["query"]["cursor"]


def test_audit_cursor__past_32_bits__an_empty_page(listed, viewer):
    """Audit sequence numbers are 64-bit: a position past 2**31 is merely in the future."""
    response = viewer.get("/api/v1/audit", query_string={"cursor": forged(INT32_PAST)})
    assert response.status_code == 200
    assert response.json["items"] == []


# --- periods at the ends of the calendar -------------------------------------------------

PERIODS = [
    {"until": "0001-01-02T00:00:00Z"},  # the default since (90 days earlier) is before year 1
    {"since": "0001-01-01T00:00:00Z", "until": "0001-01-03T00:00:00Z"},
    {"since": "9999-12-30T00:00:00Z", "until": "9999-12-31T23:59:59Z"},
    {"since": "9999-12-31T23:00:00Z"},
    {"since": "0001-01-01T00:00:00+01:00", "until": "0001-01-03T00:00:00+01:00"},
    {"since": "9999-12-31T23:00:00-01:00"},
]


@pytest.mark.parametrize("period", PERIODS)
def test_flow__period_at_the_calendar_ends__422(listed, viewer, period):
    response = viewer.get("/api/v1/flow", query_string=period)
    assert response.status_code == 422, response.json
    assert set(response.json["errors"]["query"]) & {"since", "until"}


@pytest.mark.parametrize("period", PERIODS)
def test_objective_report__period_at_the_calendar_ends__422(listed, viewer, period):
    objective = viewer.get("/api/v1/objectives").json["items"][0]["id"]
    response = viewer.get(f"/api/v1/objectives/{objective}/report", query_string=period)
    assert response.status_code == 422, response.json
    assert set(response.json["errors"]["query"]) & {"since", "until"}


# --- integers Python will not parse -------------------------------------------------------


def _huge_json(template: str) -> bytes:
    return template.replace("HUGE", HUGE_DIGITS).encode()


@pytest.mark.parametrize(
    ("path", "who", "template"),
    [
        ("/api/v1/flags", "admin", '{"key": "big", "name": "B", "key_result_id": HUGE}'),
        ("/api/v1/cohorts", "admin", '{"key": "c2", "name": "C", "rules": [], "x": HUGE}'),
        ("/sdk/v1/evaluate", "sdk:production", '{"context": {"key": "u", "n": HUGE}}'),
        ("/sdk/v1/evaluate", "sdk:production", '{"context": {"key": HUGE}}'),
    ],
)
def test_json_integer_over_4300_digits__400(listed, client, secrets, path, who, template):
    response = client.post(
        path,
        data=_huge_json(template),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secrets[who]}"},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "digits" in response.json["message"]


# --- 405 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/flags", {"GET", "POST"}),
        ("PUT", "/api/v1/cohorts", {"GET", "POST"}),
        ("POST", "/api/v1/audit", {"GET"}),
    ],
)
def test_wrong_method__405_with_allow(viewer, method, path, allowed):
    response = viewer.request(method, path)
    assert response.status_code == 405
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert response.json["code"] == 405


# --- key results whose progress is not a number ------------------------------------------


@pytest.fixture
def objective(admin) -> int:
    body = {"title": "O", "period": "2026-Q4", "owner": "t"}
    return int(admin.post("/api/v1/objectives", json=body).json["id"])


@pytest.mark.parametrize(
    "numbers",
    [
        {"baseline": 0, "target": 5e-324},
        {"baseline": 1, "target": 1 + 2.3e-16},
        {"baseline": 0, "target": -1e-10, "current": 1e15},
    ],
)
def test_key_result__target_a_hair_from_baseline__422_on_target(admin, objective, numbers):
    body = {"title": "K", "metric": "m", **numbers}
    response = admin.post(f"/api/v1/objectives/{objective}/key-results", json=body)
    assert response.status_code == 422, response.json
    assert response.json["errors"]["json"]["target"]


def test_key_result__patched_to_a_hair__422_and_unchanged(admin, objective):
    body = {"title": "K", "metric": "m", "baseline": 0, "target": 1}
    created = admin.post(f"/api/v1/objectives/{objective}/key-results", json=body)
    path = f"/api/v1/key-results/{created.json['id']}"
    etag = admin.get(path).headers["ETag"]
    response = admin.patch(path, json={"target": 5e-324}, headers={"If-Match": etag})
    assert response.status_code == 422, response.json
    assert admin.get(path).json["target"] == 1


def test_key_result__stored_hair_target__progress_null_and_valid_json(app, admin, objective, clock):
    """A row stored before the rule (or by SQL) still answers valid JSON, progress null."""
    with app.extensions["flagsvc"].db.write() as session:
        kr = KeyResult(objective_id=objective, title="K", metric="m", baseline=0.0,
                       target=5e-324, current=1.0, unit="", created_at=clock())  # fmt: skip
        session.add(kr)
        session.flush()
        kr_id = kr.id
    response = admin.get(f"/api/v1/key-results/{kr_id}")
    text = response.get_data(as_text=True)
    assert "Infinity" not in text and "NaN" not in text
    assert response.json["progress"] is None
    report = admin.get(f"/api/v1/objectives/{objective}/report").get_data(as_text=True)
    assert "Infinity" not in report


# --- racing creates of one key -------------------------------------------------------------

RACERS = 20


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/cohorts", {"key": "racy", "name": "R", "rules": []}),
        ("/api/v1/environments", {"key": "racy", "name": "R"}),
    ],
)
def test_concurrent_creates_of_one_key__one_201_the_rest_409(client, secrets, path, body):
    barrier = threading.Barrier(RACERS)
    codes: list[int] = []

    def create() -> None:
        caller = Caller(client.application.test_client(), secrets["admin"])
        barrier.wait()
        response = caller.post(path, json=body)
        codes.append(response.status_code)
        if response.status_code == 409:
            assert "racy" in response.json["message"]

    threads = [threading.Thread(target=create) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(codes) == [201] + [409] * (RACERS - 1)


# --- strict numbers, booleans and whole-value patterns ----------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/flags/f1/environments/staging/stage",
         {"stage": "general", "rollout_percent": "50"}, "rollout_percent"),
        ("PUT", "/api/v1/flags/f1/readiness/docs", {"done": "yes"}, "done"),
        ("PUT", "/api/v1/flags/f1/readiness/docs", {"done": 1}, "done"),
        ("POST", "/api/v1/cohorts", {"key": "c9", "name": "C", "opt_in": 0}, "opt_in"),
        ("POST", "/api/v1/environments", {"key": "qa", "name": "QA", "gated": "true"}, "gated"),
        ("POST", "/api/v1/objectives", {"title": "O", "period": "2026\n", "owner": "t"}, "period"),
        ("POST", "/api/v1/cohorts", {"key": "c9\n", "name": "C"}, "key"),
        ("POST", "/api/v1/flags", {"key": "f9\n", "name": "F", "key_result_id": 1}, "key"),
    ],
)  # fmt: skip
def test_loose_types_and_trailing_newlines__422_naming_the_field(
    listed, admin, method, path, body, field
):
    response = admin.request(method, path, json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["json"]


def test_key_result_target_as_text__422(admin, objective):
    body = {"title": "K", "metric": "m", "baseline": 0, "target": "1"}
    response = admin.post(f"/api/v1/objectives/{objective}/key-results", json=body)
    assert response.status_code == 422
    assert "target" in response.json["errors"]["json"]


def _body_schemas() -> list[tuple[str, Any]]:
    from flagsvc import create_app

    app = create_app({"database_url": "sqlite://", "testing": True, "redis_url": None})
    found = []
    for rule in app.url_map.iter_rules():
        view = getattr(app.view_functions[rule.endpoint], "view_class", None)
        for method in ("post", "put", "patch"):
            doc = getattr(getattr(view, method, None), "_apidoc", {})
            for parameter in doc.get("arguments", {}).get("parameters", []):
                if parameter.get("in", parameter.get("location")) == "json":
                    schema = parameter["schema"]
                    found.append((f"{method.upper()} {rule.rule}", schema))
    return found


def _loose_fields(schema: Any, path: str = "") -> list[str]:
    """Fields of a body schema that take text for a number or a boolean, or match
    patterns with ``re.match`` (a trailing newline passes ``$``)."""
    schema = schema() if isinstance(schema, type) else schema
    loose = []
    for name, field in schema.fields.items():
        where = f"{path}{name}"
        inner = field
        while isinstance(inner, ma.fields.List | ma.fields.Dict):
            inner = inner.inner if isinstance(inner, ma.fields.List) else inner.value_field
            if inner is None:
                break
        if isinstance(inner, ma.fields.Nested):
            loose += _loose_fields(inner.schema, where + ".")
            continue
        if isinstance(inner, ma.fields.Boolean) and not isinstance(inner, StrictBoolean):
            loose.append(where)
        if isinstance(inner, ma.fields.Integer) and not inner.strict:
            loose.append(where)
        if isinstance(inner, ma.fields.Float | ma.fields.Decimal) and not isinstance(
            inner, StrictFloat | StrictDecimal
        ):
            loose.append(where)
        validators = list(getattr(inner, "validators", []))
        if any(type(v) is validate.Regexp for v in validators):
            loose.append(where + " (pattern)")
    return loose


def test_every_body_field__numbers_booleans_and_patterns_strict():
    loose = {name: _loose_fields(schema) for name, schema in _body_schemas()}
    assert {name: fields for name, fields in loose.items() if fields} == {}
