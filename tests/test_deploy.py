"""The shipped load balancer (``deploy/nginx.conf``): it buffers request bodies,
three instances behind it deliver every change to streams on all three, and each of
them answers a patch for a change made through another.

gunicorn holds a worker connection while a client trickles its body (4,100 such
connections stopped even ``/healthz``), so the service runs behind a proxy that reads
the whole body first (README, "The load balancer"). Checked by reading the config's
directives, and with ``nginx -t`` where nginx is installed (the upstream's
``resolve``, nginx >= 1.27.3, swapped for a plain address as Debian's 1.22 needs).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from flagsvc_sdk import Client

from tests.live import Balancer
from tests.live import LiveService
from tests.live import start_services
from tests.live_helpers import admin_client
from tests.live_helpers import create_cohort
from tests.live_helpers import create_flag
from tests.live_helpers import set_cohorts
from tests.live_helpers import state_path
from tests.live_helpers import wait_for
from tests.live_helpers import wait_for_all

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "nginx.conf"
SIZE = re.compile(r"^(\d+)([kKmM]?)$")


def _blocks(text: str) -> dict[str, list[list[str]]]:
    """Directives by the block they are in (``http``, ``http/server``, …), each with its
    arguments: enough of nginx's syntax for this file (no quotes spanning ``;``)."""
    text = re.sub(r"#[^\n]*", "", text)
    found: dict[str, list[list[str]]] = {}
    path: list[str] = []
    words: list[str] = []
    for token in re.findall(r"[{};]|[^\s{};]+", text):
        if token == "{":
            path.append(words[0] if words else "?")
            words = []
        elif token == "}":
            path.pop()
        elif token == ";":
            found.setdefault("/".join(path), []).append(words)
            words = []
        else:
            words.append(token)
    return found


def _directive(blocks: dict[str, list[list[str]]], block: str, name: str) -> list[str]:
    values = [args[1:] for args in blocks.get(block, []) if args and args[0] == name]
    assert values, f"{name} is not set in {block}"
    return values[-1]


def _bytes(size: str) -> int:
    number, unit = SIZE.match(size).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 2**10, "m": 2**20}[unit.lower()]


def test_nginx_conf__buffers_whole_request_bodies_before_the_service():
    blocks = _blocks(CONFIG.read_text())
    assert _directive(blocks, "http", "proxy_request_buffering") == ["on"]
    assert _bytes(_directive(blocks, "http", "client_body_buffer_size")[0]) >= 64 * 2**10
    for timeout in ("client_body_timeout", "client_header_timeout"):
        assert _directive(blocks, "http", timeout)
    # and no server or location turns it off again
    for block, directives in blocks.items():
        for args in directives:
            assert args[:1] != ["proxy_request_buffering"] or args[1:] == ["on"], block


def test_nginx_conf__body_limit_above_the_services():
    size = _directive(_blocks(CONFIG.read_text()), "http", "client_max_body_size")[0]
    assert _bytes(size) > 16 * 2**20  # FLAGSVC_MAX_BODY_BYTES answers the JSON 413


def test_nginx_conf__nginx_accepts_it(tmp_path):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx); the directives are checked")
    config = tmp_path / "nginx.conf"
    config.write_text(
        CONFIG.read_text().replace("server api:8000 resolve;", "server 127.0.0.1:8000;")
    )
    result = subprocess.run(
        [nginx, "-t", "-c", str(config), "-p", str(tmp_path), "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def _streams_open(service: LiveService) -> float:
    status, body = service.get("/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith("flagsvc_sdk_streams_open "):
            return float(line.split()[1])
    return 0.0


def _three_behind_nginx() -> dict[str, str]:
    """Skip without nginx; else the environment of each of the three instances."""
    if (shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")) is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    return {"FLAGSVC_WORKERS": "1", "FLAGSVC_ACCESS_LOG": "0"}


def test_three_instances_behind_nginx__every_change_reaches_streams_on_all_three(
    pg_url: str, redis_url: str
) -> None:
    env = _three_behind_nginx()
    services = start_services(3, pg_url, redis_url, env=env)
    first = services[0]
    clients: list[Client] = []
    try:
        with Balancer([s.port for s in services]) as balancer, admin_client(first) as admin:
            admin.base_url = httpx.URL(balancer.url)
            create_flag(admin, "spread", environment="staging", stage="off")
            sdk_key = first.sdk_key("staging")
            # Given SDKs streaming through the balancer, on every instance
            try:
                clients = [
                    Client(balancer.url, sdk_key, poll_interval=60, timeout=2, send_metrics=False)
                    for _ in range(6)
                ]
                assert all(client.wait_until_ready(10) for client in clients)
                wait_for_all(services, lambda service: _streams_open(service) >= 1, timeout=10)
                # When changes are made through the balancer (landing on any instance)
                for percent in (10, 20, 30, 40, 50, 60):
                    move = {"stage": "general", "rollout_percent": percent}
                    moved = admin.post(f"{state_path('spread', 'staging')}/stage", json=move)
                    assert moved.status_code == 200, moved.text
                # Then every stream, on all three, delivers the last (polls are a minute away)
                final = json.loads(first.get("/sdk/v1/snapshot", sdk_key)[1])["version"]
                wait_for_all(clients, lambda client: client.version == final, timeout=10)
                assert all(client.stats.stream_connects >= 1 for client in clients)
                # and a revalidation through the balancer is a 304 on any instance
                etag = f'"staging.{final}"'
                for _ in range(6):
                    answer = httpx.get(
                        f"{balancer.url}/sdk/v1/snapshot",
                        headers={"Authorization": f"Bearer {sdk_key}", "If-None-Match": etag},
                    )
                    assert answer.status_code == 304, answer.text
            finally:
                for client in clients:
                    client.close()
    finally:
        services.stop()


class SnapshotAnswers(httpx.HTTPTransport):
    """Notes each 200 snapshot answer as ``patch`` or ``full``, as it came."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/snapshot") or response.status_code != 200:
            return response
        raw = b"".join(response.stream)  # type: ignore[union-attr]  # not yet decoded
        response.close()
        gzipped = response.headers.get("Content-Encoding") == "gzip"
        body = json.loads(gzip.decompress(raw) if gzipped else raw)
        self.answers.append("patch" if "patches" in body else "full")
        return httpx.Response(200, headers=response.headers, content=raw)


def _patch_from(url: str, sdk_key: str, version: int, base: str) -> dict[str, object]:
    """What ``url`` answers an SDK holding ``version`` (content hash ``base``)."""
    answer = httpx.get(
        f"{url}/sdk/v1/snapshot",
        params={"since": version, "base": base},
        headers={"Authorization": f"Bearer {sdk_key}", "Flagsvc-Delta": "1"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_three_instances_behind_nginx__a_change_through_one__a_patch_from_each(
    pg_url: str, redis_url: str
) -> None:
    env = _three_behind_nginx()
    with (
        start_services(3, pg_url, redis_url, env=env) as services,
        Balancer([s.port for s in services]) as balancer,
        admin_client(services[0]) as admin,
    ):
        # Given a flag in early access on a cohort (a snapshot bigger than one change)
        create_cohort(admin, "crowd")
        crowd = [f"member-{n:05d}" for n in range(2_000)]
        added = admin.post("/api/v1/cohorts/crowd/members", json={"add": crowd})
        assert added.status_code == 200, added.text
        create_flag(admin, "patched", environment="production", stage="off")
        set_cohorts(admin, "patched", "production", ["crowd"])
        path = f"{state_path('patched', 'production')}/stage"
        assert admin.post(path, json={"stage": "early_access"}).status_code == 200
        sdk_key = services[0].sdk_key("production")
        # and an SDK behind nginx holding it, streaming
        answers = SnapshotAnswers()
        client = Client(
            balancer.url, sdk_key, poll_interval=60, timeout=5, send_metrics=False,
            transport=answers,
        )  # fmt: skip
        try:
            assert client.wait_until_ready(10)
            wait_for(lambda: client.stats.stream_connects >= 1, 10)
            held = httpx.get(
                f"{balancer.url}/sdk/v1/snapshot", headers={"Authorization": f"Bearer {sdk_key}"}
            )
            version, base = held.json()["version"], held.headers["Flagsvc-Content-Hash"]
            # When one member is added through the first instance
            joined = admin.post("/api/v1/cohorts/crowd/members", json={"add": ["newcomer"]})
            assert joined.status_code == 200, joined.text
            # Then every instance answers that version with the patch, asked directly
            for service in services:

                def patched(url: str = service.url) -> bool:
                    return "patches" in _patch_from(url, sdk_key, version, base)

                wait_for(patched, 10)
                steps = _patch_from(service.url, sdk_key, version, base)["patches"]
                assert isinstance(steps, list) and len(steps) == 1, steps
                assert steps[0]["members_added"] == {"crowd": ["newcomer"]}, steps
            # and through nginx, whichever instance it picks
            for _ in range(6):
                assert "patches" in _patch_from(balancer.url, sdk_key, version, base)
            # And the SDK behind nginx converges on it by the patch, not a full fetch
            wait_for(lambda: client.is_enabled("patched", {"key": "newcomer"}), 10)
            assert client.stats.patches_applied == 1 and client.stats.patches_refused == 0
            assert answers.answers == ["full", "patch"]
        finally:
            client.close()
