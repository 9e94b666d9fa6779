"""Admin → Webhooks: the delivery log in the browser (admins only)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from flagsvc.domain.webhooks import signing
from flagsvc.services.webhooks import worker
from flagsvc.services.webhooks.sender import Sender
from tests.conftest import create_flag
from tests.ui.conftest import html
from tests.webhook_receiver import Receiver
from tests.webhook_receiver import free_port
from tests.webhook_receiver import receiving


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"webhook_allow_private": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def _notify_and_deliver(app: Any, admin: Any, flag_key: str) -> None:
    """A new flag moved into early access in staging, and the worker's one pass over what
    that queued."""
    create_flag(admin, flag_key)
    moved = admin.post(
        f"/api/v1/flags/{flag_key}/environments/staging/stage", json={"stage": "early_access"}
    )
    assert moved.status_code == 200
    state = app.extensions["flagsvc"]
    sender = Sender(timeout=1, allow_private=True)
    try:
        worker.run_due(state.db, sender, state.clock)
    finally:
        sender.close()


@pytest.mark.parametrize("role", ["engineer", "marketing", "viewer"])
def test_webhooks_page__not_an_admin__403(ui, secrets, role):
    assert ui(secrets[role]).get("/ui/admin/webhooks").status_code == 403


def test_webhooks_page__no_webhooks__the_new_webhook_form_is_open(ui_admin):
    page = html(ui_admin.get("/ui/admin/webhooks"))
    assert "No webhooks yet" in page and "POST /api/v1/webhooks" in page
    assert '<details class="card" open>' in page and "Create webhook" in page
    assert 'href="/ui/admin/webhooks"' in html(ui_admin.get("/ui/admin"))


def test_webhooks_page__shows_delivered_and_failing_deliveries_with_attempts(
    app, ui_admin, admin, receiver
):
    ok = admin.post("/api/v1/webhooks", json={"name": "news", "url": receiver.url}).json
    down = f"http://127.0.0.1:{free_port()}/hook"
    failing = admin.post("/api/v1/webhooks", json={"name": "down", "url": down}).json
    _notify_and_deliver(app, admin, "shown-flag")

    page = html(ui_admin.get(f"/ui/admin/webhooks?webhook={ok['id']}"))
    assert "Delivery log: news" in page
    assert "flag.early_access_entered" in page and "shown-flag" in page
    assert "delivered" in page and "HTTP 200" in page
    [event_id] = {r.event_id for r in receiver.received}
    assert event_id in page

    page = html(ui_admin.get(f"/ui/admin/webhooks?webhook={failing['id']}"))
    assert "pending" in page and "next try" in page and "ConnectError" in page
    assert ui_admin.get("/ui/admin/webhooks?webhook=999").status_code == 404


FORM = {
    "name": "marketing-slack",
    "url": "https://hooks.slack.example/services/T1/B2/c3",
    "format": "slack",
    "events": ["flag.safe_to_promise", "flag.launched"],
    "environments": ["production"],
    "active": "yes",
}


def _created(ui_admin: Any, **fields: Any) -> tuple[dict[str, Any], str]:
    """Create through the form; the webhook as the API shows it, and the secret shown."""
    answer = ui_admin.post("/ui/admin/webhooks", {**FORM, **fields})
    assert answer.status_code == 201, html(answer)
    page = html(answer)
    secret = re.search(r'id="new-secret" class="secret" type="text" readonly value="([^"]+)"', page)
    assert secret is not None and "shown once" in page
    return page, secret.group(1)


def test_create__form__webhook_made_with_its_choices_and_the_secret_shown_once(ui_admin, admin):
    page, secret = _created(ui_admin)

    [hook] = admin.get("/api/v1/webhooks").json
    assert {k: hook[k] for k in ("name", "url", "format", "events", "environments", "active")} == {
        "name": "marketing-slack", "url": FORM["url"], "format": "slack",
        "events": FORM["events"], "environments": ["production"], "active": True,
    }  # fmt: skip
    assert hook["value_streams"] == []
    assert len(secret) >= 24 and "Delivery log: marketing-slack" in page
    assert secret not in html(ui_admin.get("/ui/admin/webhooks"))  # once


def test_create__secret_signs_the_deliveries(app, ui_admin, admin, receiver):
    _page, secret = _created(ui_admin, url=receiver.url, format="json", environments=[],
                             events=["flag.early_access_entered"])  # fmt: skip
    _notify_and_deliver(app, admin, "signed")
    [got] = receiver.received
    assert signing.verify(secret, got.headers["Flagsvc-Signature"], got.body, int(time.time()))


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"events": []}, "events", "Choose at least one event."),
        ({"url": "ftp://files.example.com/x"}, "url", "http"),
        ({"name": ""}, "name", ""),
        ({"format": "xml"}, "format", ""),
    ],
)
def test_create__bad_form__422_with_the_reason_at_its_field_nothing_made(
    ui_admin, admin, fields, field, words
):
    answer = ui_admin.post("/ui/admin/webhooks", {**FORM, **fields})

    assert answer.status_code == 422
    page = html(answer)
    error = re.search(rf'id="webhook-{field}-error">([^<]+)<', page)
    assert error is not None and words in error.group(1), page
    assert admin.get("/api/v1/webhooks").json == []


def test_create__name_taken__refused_at_the_name(ui_admin):
    _created(ui_admin)
    answer = ui_admin.post("/ui/admin/webhooks", FORM)
    assert answer.status_code == 409
    assert re.search(r'id="webhook-name-error">[^<]*already exists', html(answer))


def test_edit__save_pause_and_rotate__audited_and_guarded_by_version(ui_admin, admin):
    _created(ui_admin)
    [hook] = admin.get("/api/v1/webhooks").json
    edit = f"/ui/admin/webhooks/{hook['id']}/edit"
    page = html(ui_admin.get(edit))
    assert 'value="marketing-slack"' in page and f'name="version" value="{hook["version"]}"' in page
    changed = {**FORM, "events": ["flag.killed"], "version": str(hook["version"])}
    del changed["active"]  # unticked: paused

    saved = ui_admin.post(edit, changed)

    assert saved.status_code == 303
    [after] = admin.get("/api/v1/webhooks").json
    assert after["events"] == ["flag.killed"] and after["active"] is False
    stale = ui_admin.post(edit, {**changed, "name": "other"})  # the version it showed is old
    assert stale.status_code == 412 and "changed" in html(stale).lower()
    rotated = ui_admin.post(
        edit, {**changed, "version": str(after["version"]), "rotate_secret": "yes"}
    )
    assert rotated.status_code == 200 and "shown once" in html(rotated)
    actions = [e["action"] for e in admin.get("/api/v1/audit").json["items"]]
    assert actions.count("webhook.updated") == 2


def test_delete__gone_with_its_log(ui_admin, admin):
    _created(ui_admin)
    [hook] = admin.get("/api/v1/webhooks").json
    gone = ui_admin.post(
        f"/ui/admin/webhooks/{hook['id']}/delete", {"version": str(hook["version"])}
    )
    assert gone.status_code == 303
    assert admin.get("/api/v1/webhooks").json == []
    assert "deleted" in html(ui_admin.get(gone.headers["Location"]))


def test_send_again__dead_delivery__pending_then_delivered_with_the_same_event_id(
    app, ui_admin, admin, clock
):
    port = free_port()
    _created(ui_admin, url=f"http://127.0.0.1:{port}/hook", format="json", environments=[],
             events=["flag.early_access_entered"])  # fmt: skip
    [hook] = admin.get("/api/v1/webhooks").json
    create_flag(admin, "late")
    moved = admin.post(
        "/api/v1/flags/late/environments/staging/stage", json={"stage": "early_access"}
    )
    assert moved.status_code == 200
    state = app.extensions["flagsvc"]
    sender = Sender(timeout=0.5, allow_private=True)
    try:
        for _hour in range(26):
            worker.run_due(state.db, sender, state.clock)
            clock.advance(hours=1)
        worker.run_due(state.db, sender, state.clock)
        [dead] = admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
        assert dead["status"] == "dead"
        page = html(ui_admin.get(f"/ui/admin/webhooks?webhook={hook['id']}"))
        assert f'aria-label="Send {dead["event_id"]} again">Send again<' in page

        again = ui_admin.post(
            f"/ui/admin/webhooks/{hook['id']}/deliveries/{dead['id']}/redeliver", {}
        )

        assert again.status_code == 303
        assert "sent again" in html(ui_admin.get(again.headers["Location"]))
        with receiving(port) as back:
            worker.run_due(state.db, sender, state.clock)
            [got] = back.received
    finally:
        sender.close()
    assert got.event_id == dead["event_id"]
    [delivered] = admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries").json["items"]
    assert delivered["status"] == "delivered"


@pytest.mark.parametrize("role", ["engineer", "marketing", "viewer"])
def test_webhook_forms__not_an_admin__403(ui, secrets, admin, role):
    made = admin.post("/api/v1/webhooks", json={"name": "x", "url": "https://h.example/x"}).json
    browser = ui(secrets[role])
    assert browser.post("/ui/admin/webhooks", FORM).status_code == 403
    assert browser.get(f"/ui/admin/webhooks/{made['id']}/edit").status_code == 403
    assert browser.post(f"/ui/admin/webhooks/{made['id']}/delete", {}).status_code == 403
    assert (
        browser.post(f"/ui/admin/webhooks/{made['id']}/deliveries/1/redeliver", {}).status_code
        == 403
    )
