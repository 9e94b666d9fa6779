"""``flagsvc demo``: a realistic quarter through the services, loaded once."""

from __future__ import annotations

from click.testing import CliRunner

from flagsvc.cli import main
from flagsvc.services import demo


def _load(app, clock):
    return demo.load(app.extensions["flagsvc"].db, clock())


def test_demo__loaded__tells_the_quarter_through_every_report(app, viewer, clock):
    """One load, read three ways (loading the quarter is most of the cost)."""
    summary = _load(app, clock)
    _flow_report_names_a_bottleneck(viewer, summary)
    _history_by_the_right_actors(viewer)
    _okr_report_and_stale_flags(viewer)


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
    assert all(2 <= len(o["key_results"]) <= 3 for o in objectives)
    report = viewer.get(f"/api/v1/objectives/{objectives[0]['id']}/report").json
    reach = [
        f["early_adopter_reach"]["production"] for kr in report["key_results"] for f in kr["flags"]
    ]
    assert max(reach) > 0
    stale = {item["flag"] for item in viewer.get("/api/v1/stale-flags").json["items"]}
    assert stale >= demo.QUIET


def test_demo__second_load__refused_and_nothing_written(app, viewer, clock):
    _load(app, clock)
    events = viewer.get("/api/v1/audit/head").json["seq"]
    assert _load(app, clock) is None
    assert viewer.get("/api/v1/audit/head").json["seq"] == events


def test_cli_demo__twice__summary_then_refusal(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    runner = CliRunner()
    first = runner.invoke(main, ["demo"], env=env)
    assert first.exit_code == 0, first.output
    assert "35 flags" in first.stderr and "bottleneck" in first.stderr and first.stdout == ""
    second = runner.invoke(main, ["demo"], env=env)
    assert second.exit_code == 0 and "already loaded" in second.stderr
