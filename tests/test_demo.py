"""``flagsvc demo``: a realistic quarter through the services, loaded once."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from click.testing import CliRunner

from flagsvc.cli import main
from flagsvc.domain.errors import ConflictError
from flagsvc.services import demo
from flagsvc.ui.webhooks import SHOWN


def _load(app, clock):
    """Load the quarter ending 92 days after the fixture's set-up events (the audit's
    times never go back, so the quarter must start after them)."""
    if clock() < _SET_UP + timedelta(days=92):
        clock.advance(days=92)
    return demo.load(app.extensions["flagsvc"].db, clock())


_SET_UP = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)  # the conftest clock's start


def test_demo__loaded__tells_the_quarter_through_every_report_and_a_second_load_is_refused(
    app, viewer, admin, clock
):
    """One load, read six ways, then loaded again (loading the quarter is most of the
    cost, so one test loads it once for all of these)."""
    summary = _load(app, clock)
    _flow_report_names_a_bottleneck(viewer, summary)
    _history_by_the_right_actors(viewer)
    _okr_report_and_stale_flags(viewer)
    _audit_times_follow_the_chain_order(viewer)
    _streams_measured_key_results_and_the_promise_board(viewer, summary)
    _webhook_delivery_log(admin, summary)
    _second_load_refused_and_nothing_written(app, viewer, clock)


def _flow_report_names_a_bottleneck(viewer, summary):
    assert summary is not None and summary.flags == len(demo.FLAGS) >= 30
    assert summary.launches_ran >= 3 and summary.bottleneck
    body = viewer.get("/api/v1/flow").json
    assert body["bottleneck"]["stage"] in {"off", "early_access", "general"}
    assert body["bottleneck"]["median_days"] > 0
    assert body["flow_time"]["count"] >= 20 and body["waiting_for_readiness_now"] >= 2
    shares = body["flow_distribution"]["released"]
    assert all(shares[item]["count"] > 0 for item in ("feature", "defect", "risk", "debt"))
    assert viewer.get("/api/v1/audit/verify").json["valid"] is True


def _history_by_the_right_actors(viewer):
    """Killed and resumed, rolled back, retired, launched by the scheduler, marked by marketing."""
    incident = viewer.get("/api/v1/flags/onboarding-checklist/timeline").json
    assert [m["action"] for m in incident["environments"]["production"]["kill_switch"]] == [
        "killed", "resumed"
    ]  # fmt: skip
    rollbacks = viewer.get("/api/v1/audit?flag=team-invites-v2&action=flag.stage_changed").json
    assert "rollback" in [e["after"]["direction"] for e in rollbacks["items"]]
    retired = viewer.get("/api/v1/flags/legacy-api-sunset/timeline").json
    assert retired["environments"]["production"]["retired"] is not None
    ran = viewer.get("/api/v1/audit?action=flag.launch_ran").json["items"]
    assert ran and {e["actor"] for e in ran} == {"scheduler"}
    marks = viewer.get("/api/v1/audit?action=readiness.item_marked&limit=500").json["items"]
    assert {e["actor_role"] for e in marks} == {"marketing"}
    moves = viewer.get("/api/v1/audit?action=flag.stage_changed&limit=500").json["items"]
    assert {e["actor_role"] for e in moves} == {"engineer", "system"}


def _okr_report_and_stale_flags(viewer):
    objectives = viewer.get("/api/v1/objectives").json["items"]
    assert 3 <= len(objectives) <= 4
    assert all(2 <= len(o["key_results"]) <= 4 for o in objectives)
    report = viewer.get(f"/api/v1/objectives/{objectives[0]['id']}/report").json
    reach = [
        f["early_adopter_reach"]["production"] for kr in report["key_results"] for f in kr["flags"]
    ]
    assert max(reach) > 0
    stale = {item["flag"] for item in viewer.get("/api/v1/stale-flags").json["items"]}
    assert stale >= demo.QUIET


def _streams_measured_key_results_and_the_promise_board(viewer, summary):
    """Issue 14's story: streams compared, one holding delivery back at a named step;
    key results measured from the audit with a weekly history; features safe to promise
    with distinct early adopters the SDKs saw."""
    streams = viewer.get("/api/v1/flow/value-streams").json
    keys = [s["value_stream"] for s in streams["value_streams"]]
    assert keys == sorted(key for key, *_ in demo.VALUE_STREAMS)  # every flag has a stream
    held = streams["holds_back"]
    assert held["value_stream"] in keys and held["median_days"] > 0
    assert summary.holds_back and held["value_stream"] in summary.holds_back
    steps = {s["value_stream"]: s["bottleneck"]["step"] for s in streams["value_streams"]}
    assert steps[held["value_stream"]] == held["step"]
    measured = [
        kr
        for o in viewer.get("/api/v1/objectives").json["items"]
        for kr in o["key_results"]
        if kr.get("measure")
    ]
    assert len(measured) == len(demo.MEASURED) == summary.measured_key_results
    assert {kr["measure"]["value_stream"] for kr in measured} == set(keys)
    assert all(len(kr["history"]) >= 12 for kr in measured)
    assert any(p["value"] is not None for kr in measured for p in kr["history"])
    board = viewer.get("/api/v1/promise-board").json["items"]
    assert len(board) == summary.safe_to_promise >= 2
    assert all(item["early_adopters_seen"] > 100 for item in board)
    assert all(0 < item["early_access_evaluations"] < item["evaluations"] for item in board)


def _webhook_delivery_log(admin, summary):
    """Issue 14 item 7: marketing's Slack webhook and a quarter of deliveries, every one
    delivered (nothing left for the worker to send to the fictional URL), one of them
    after a timeout and a 503."""
    hooks = admin.get("/api/v1/webhooks").json
    assert [(h["name"], h["format"], h["environments"]) for h in hooks] == [
        ("marketing-slack", "slack", ["production"])
    ]
    assert hooks[0]["url"].startswith("https://hooks.example.com/")
    log = _all_deliveries(admin, hooks[0]["id"])
    assert len(log) >= 30 and {d["status"] for d in log} == {"delivered"}
    assert {d["environment"] for d in log} == {"production", None}  # None: readiness
    kinds = {d["event_type"] for d in log}
    assert {"flag.early_access_entered", "flag.launched", "flag.killed"} <= kinds
    assert {"flag.released", "flag.safe_to_promise"} <= kinds
    for delivery in log:
        attempts = delivery["attempt_log"]
        assert len(attempts) == delivery["attempts"] and attempts[-1]["status_code"] == 200
        times = [delivery["created_at"], *(a["attempted_at"] for a in attempts)]
        times = [datetime.fromisoformat(t) for t in (*times, delivery["delivered_at"])]
        assert times == sorted(times)
        assert 0 < attempts[-1]["latency_ms"] < 1000
    retried = [d for d in log if d["attempts"] > 1]
    assert len(retried) == 1
    assert [a["status_code"] for a in retried[0]["attempt_log"]] == [None, 503, 200]
    assert "timeout" in retried[0]["attempt_log"][0]["error"]
    assert retried[0] in log[:SHOWN]  # the UI's newest deliveries
    lines = summary.webhook_lines()
    assert f"{len(log)} deliveries" in lines[0] and "/ui/admin/webhooks" in "".join(lines)


def _all_deliveries(admin, webhook_id):
    found, cursor = [], None
    while True:
        query = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = admin.get(f"/api/v1/webhooks/{webhook_id}/deliveries{query}").json
        found += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _second_load_refused_and_nothing_written(app, viewer, clock):
    events = viewer.get("/api/v1/audit/head").json["seq"]
    assert _load(app, clock) is None
    assert viewer.get("/api/v1/audit/head").json["seq"] == events


def test_cli_demo__twice__summary_then_refusal(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    runner = CliRunner()
    first = runner.invoke(main, ["demo"], env=env)
    assert first.exit_code == 0, first.output
    assert "35 flags" in first.stderr and "bottleneck" in first.stderr and first.stdout == ""
    assert "webhook delivery log" in first.stderr and "/ui/admin/webhooks" in first.stderr
    # make demo then serves with the scheduler: its worker finds nothing to send to the
    # demo's fictional receiver
    worker = runner.invoke(main, ["scheduler", "--once"], env=env)
    assert worker.exit_code == 0 and "0 webhook deliveries attempted" in worker.stderr
    second = runner.invoke(main, ["demo"], env=env)
    assert second.exit_code == 0 and "already loaded" in second.stderr


def _audit_times_follow_the_chain_order(viewer):
    events, cursor = [], None
    while True:
        page = viewer.get("/api/v1/audit?limit=500" + (f"&cursor={cursor}" if cursor else "")).json
        events += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    times = [e["occurred_at"] for e in events]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert times == sorted(times)  # never back in time along the chain


def test_demo__history_inside_the_quarter__refused_and_nothing_written(app, viewer, clock):
    # Given the fixture's set-up events at the clock's start, when the demo's quarter
    # would end now (its start lies before them)
    events = len(viewer.get("/api/v1/audit?limit=500").json["items"])
    with pytest.raises(ConflictError, match="database of its own"):
        demo.load(app.extensions["flagsvc"].db, clock())
    assert len(viewer.get("/api/v1/audit?limit=500").json["items"]) == events


def test_cli_demo__after_init__one_line_and_exit_1(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'used.db'}"}
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    refused = runner.invoke(main, ["demo"], env=env)
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1 and "make demo" in refused.stderr
