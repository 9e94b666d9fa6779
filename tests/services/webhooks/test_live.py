"""The real thing: ``flagsvc serve --with-scheduler`` delivers a webhook by itself."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from flagsvc.domain.webhooks import signing
from tests.live import LiveService
from tests.live import start_service
from tests.webhook_receiver import Receiver


def _call(service: LiveService, method: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        service.url + path, data=json.dumps(body).encode(), method=method
    )
    request.add_header("Authorization", f"Bearer {service.admin_token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def test_serve_with_scheduler__stage_move__delivered_signed_within_seconds(
    pg_url: str, receiver: Receiver
):
    env = {"FLAGSVC_WEBHOOK_ALLOW_PRIVATE": "1"}
    with start_service(pg_url, env=env, serve_args=["--with-scheduler"]) as service:
        hook = _call(service, "POST", "/api/v1/webhooks", {"name": "live", "url": receiver.url})
        objective = _call(
            service, "POST", "/api/v1/objectives", {"title": "O", "period": "2026-Q4", "owner": "o"}
        )
        key_result = _call(
            service,
            "POST",
            f"/api/v1/objectives/{objective['id']}/key-results",
            {"title": "K", "metric": "m", "baseline": 0, "target": 1},
        )
        flag = {"key": "live-flag", "name": "Live", "flow_item": "feature"}
        _call(service, "POST", "/api/v1/flags", {**flag, "key_result_id": key_result["id"]})
        stage = "/api/v1/flags/live-flag/environments/staging/stage"
        _call(service, "POST", stage, {"stage": "early_access"})

        deadline = time.monotonic() + 15
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)

    [got] = receiver.received
    assert got.json["type"] == "flag.early_access_entered"
    assert signing.verify(
        hook["secret"], got.headers["Flagsvc-Signature"], got.body, int(time.time())
    )
