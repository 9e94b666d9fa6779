"""Admin → Webhooks: the delivery log in the browser (admins only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

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


@pytest.mark.parametrize("role", ["engineer", "marketing", "viewer"])
def test_webhooks_page__not_an_admin__403(ui, secrets, role):
    assert ui(secrets[role]).get("/ui/admin/webhooks").status_code == 403


def test_webhooks_page__no_webhooks__says_how_to_make_one(ui_admin):
    page = html(ui_admin.get("/ui/admin/webhooks"))
    assert "No webhooks yet" in page and "POST /api/v1/webhooks" in page
    assert 'href="/ui/admin/webhooks"' in html(ui_admin.get("/ui/admin"))


def test_webhooks_page__shows_delivered_and_failing_deliveries_with_attempts(
    app, ui_admin, admin, receiver
):
    ok = admin.post("/api/v1/webhooks", json={"name": "news", "url": receiver.url}).json
    down = f"http://127.0.0.1:{free_port()}/hook"
    failing = admin.post("/api/v1/webhooks", json={"name": "down", "url": down}).json
    create_flag(admin, "shown-flag")
    staged = admin.post(
        "/api/v1/flags/shown-flag/environments/staging/stage", json={"stage": "early_access"}
    )
    assert staged.status_code == 200
    state = app.extensions["flagsvc"]
    sender = Sender(timeout=1, allow_private=True)
    try:
        worker.run_due(state.db, sender, state.clock)
    finally:
        sender.close()

    page = html(ui_admin.get(f"/ui/admin/webhooks?webhook={ok['id']}"))
    assert "Delivery log: news" in page
    assert "flag.early_access_entered" in page and "shown-flag" in page
    assert "delivered" in page and "HTTP 200" in page
    [event_id] = {r.event_id for r in receiver.received}
    assert event_id in page

    page = html(ui_admin.get(f"/ui/admin/webhooks?webhook={failing['id']}"))
    assert "pending" in page and "next try" in page and "ConnectError" in page
    assert ui_admin.get("/ui/admin/webhooks?webhook=999").status_code == 404
