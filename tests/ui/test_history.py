"""History people can read: audit events as sentences and field changes, newest first."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime

import pytest

from flagsvc.domain.actions import Action
from flagsvc.storage.models import AuditEvent
from flagsvc.ui import history
from tests.ui.conftest import html


def _event(action: str, before=None, after=None, environment=None, key="f1") -> AuditEvent:
    return AuditEvent(
        seq=1, occurred_at=datetime(2026, 10, 1, tzinfo=UTC), actor="dana", actor_role="engineer",
        action=action, entity_type=action.split(".")[0], entity_key=key, flag_key=None,
        environment=environment, before=before, after=after, request_id="r", prev_hash="",
        hash="",
    )  # fmt: skip


@pytest.mark.parametrize("action", list(Action))
def test_describe__every_action__a_sentence_without_json(action):
    entry = history.describe(_event(action, {"name": "Old", "count": 1}, {"name": "New"}))
    assert entry.sentence and "{" not in entry.sentence and "_" not in entry.sentence.split()[0]


@pytest.mark.parametrize(
    ("action", "before", "after", "sentence"),
    [
        (Action.FLAG_STAGE_CHANGED, {"stage": "early_access", "rollout_percent": 0},
         {"stage": "general", "rollout_percent": 25, "direction": "forward"},
         "Stage in production: early access → general rollout at 25 %"),
        (Action.FLAG_STAGE_CHANGED, {"stage": "general", "rollout_percent": 30},
         {"stage": "early_access", "rollout_percent": 0, "direction": "rollback"},
         "Stage in production: general rollout at 30 % → early access (rollback)"),
        (Action.FLAG_KILLED, {"killed": False, "stage": "general", "rollout_percent": 50},
         {"killed": True, "stage": "general", "rollout_percent": 50},
         "Kill switch on in production: off for everyone (was general rollout at 50 %)"),
        (Action.FLAG_LAUNCH_SCHEDULED, {"launch_at": None},
         {"launch_at": "2026-10-08T09:00:00+00:00", "rollout_percent": 50.0},
         "Launch scheduled in production: 2026-10-08 09:00 UTC at 50 %"),
        (Action.FLAG_COHORTS_SET, {"cohorts": []}, {"cohorts": ["staff", "beta"]},
         "Early-access cohorts in production: — → staff, beta"),
        (Action.TOKEN_CREATED, None, {"id": 1, "name": "release-bot", "role": "engineer"},
         "Created token release-bot (engineer)"),
    ],
)  # fmt: skip
def test_describe__known_actions__read_as_people_say_them(action, before, after, sentence):
    assert history.describe(_event(action, before, after, "production")).sentence == sentence


def test_describe__readiness_mark__item_by_its_label():
    event = _event(Action.READINESS_ITEM_MARKED, {"item": "docs", "done": False},
                   {"item": "docs", "done": True, "note": "live"})  # fmt: skip
    labels = {"docs": "Documentation published"}.get
    entry = history.describe(event, lambda key: labels(key) or key)
    assert entry.sentence == "Marked “Documentation published” done: “live”"


def test_describe__update__each_changed_field_before_and_after():
    event = _event(Action.KEY_RESULT_UPDATED, {"current": 33.5, "title": "KR"},
                   {"current": 34.0, "title": "KR"})  # fmt: skip
    entry = history.describe(event)
    assert entry.sentence == "Changed the key result's current"
    assert [(c.field, c.before, c.after) for c in entry.changes] == [("current", "33.5", "34")]


def _moves(ui_engineer, key_result, count):
    ui_engineer.post("/ui/flags", {"key": "f1", "name": "F1", "flow_item": "feature",
                                   "key_result_id": str(key_result)})  # fmt: skip
    for n in range(count):
        stage = "early_access" if n % 2 == 0 else "off"
        ui_engineer.post("/ui/flags/f1/environments/staging/stage", {"stage": stage})


def test_audit_page__newest_first_in_words_with_action_list(ui_engineer, ui_viewer, key_result):
    _moves(ui_engineer, key_result, 2)
    page = html(ui_viewer.get("/ui/audit"))
    sentences = re.findall(r'<p class="sentence">([^<]+)</p>', page)
    assert sentences[0] == "Stage in staging: early access → off (rollback)"
    assert sentences[1] == "Stage in staging: off → early access"
    assert sentences[2] == "Created flag F1 (feature)"
    for action in Action:
        assert f'<option value="{action.value}"' in page


def test_audit_page__paged_back_and_forth_in_time(app, ui_engineer, ui_viewer, key_result):
    from flagsvc.ui import audit as audit_page

    audit_page.PAGE_SIZE, size = 3, audit_page.PAGE_SIZE
    try:
        _moves(ui_engineer, key_result, 6)
        first = html(ui_viewer.get("/ui/audit?flag=f1"))
        assert "Newest events" in first and "Older →" in first
        older = re.search(r'href="(/ui/audit\?[^"]*older=[^"]+)"', first).group(1)
        second = html(ui_viewer.get(older.replace("&amp;", "&")))
        newer = re.search(r'href="(/ui/audit\?[^"]*newer=[^"]+)"', second).group(1)
        back = html(ui_viewer.get(newer.replace("&amp;", "&")))
        seqs = lambda page: re.findall(r"#(\d+)</span>", page)  # noqa: E731
        assert seqs(back) == seqs(first)
        assert max(map(int, seqs(second))) < min(map(int, seqs(first)))
    finally:
        audit_page.PAGE_SIZE = size


def test_audit_page__bad_cursor__422_not_500(ui_viewer):
    assert ui_viewer.get("/ui/audit?older=not-a-cursor").status_code == 422


def test_flag_page__history_in_sentences_newest_first(ui_engineer, key_result):
    _moves(ui_engineer, key_result, 1)
    page = html(ui_engineer.get("/ui/flags/f1"))
    history_part = page[page.index('<ol class="history">') :]
    assert history_part.index("Stage in staging: off → early access") < history_part.index(
        "Created flag F1"
    )
    assert '{"stage"' not in page
