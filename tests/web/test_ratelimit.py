"""The auth-failure limit on the admin and SDK APIs, in process and on Redis.

The UI sign-in's share of it is tested in ``tests/ui/test_auth.py``.

``app`` here allows 3 failures per minute. Counters are per client address: the test
client is ``127.0.0.1`` unless a test sets ``REMOTE_ADDR``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import redis

from flagsvc import create_app
from flagsvc.services.auth_failures import KEY_PREFIX
from tests.conftest import Caller
from tests.live import free_port

LIMIT = 3
BAD_TOKEN = "fst_" + "x" * 43
BAD_SDK_KEY = "fss_" + "x" * 43
FLAGS = "/api/v1/flags"
SNAPSHOT = "/sdk/v1/snapshot"


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"auth_failure_limit": LIMIT, "auth_failure_window_seconds": 60}


def _fail(caller: Caller, path: str = FLAGS, times: int = LIMIT) -> None:
    for _ in range(times):
        assert caller.get(path).status_code == 401


def _assert_limited(response: Any, window: int = 60) -> None:
    assert response.status_code == 429
    assert response.json["code"] == 429
    assert response.json["status"] == "Too Many Requests"
    assert "too many failed authentications" in response.json["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= window


def test_admin_api__failures_over_limit__429_with_retry_after(client):
    guesser = Caller(client, BAD_TOKEN)
    _fail(guesser)
    _assert_limited(guesser.get(FLAGS))


def test_refused_attempts__counted_in_metrics(client):
    def refused() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith('flagsvc_auth_refused_total{channel="admin API"}'):
                return float(line.split()[-1])
        return 0.0

    before = refused()
    guesser = Caller(client, BAD_TOKEN)
    _fail(guesser)
    guesser.get(FLAGS)
    guesser.get(FLAGS)
    assert refused() == before + 2


def test_admin_api__limited_address__valid_new_token_not_even_checked(client, secrets):
    _fail(Caller(client, BAD_TOKEN))
    response = Caller(client, secrets["viewer"]).get(FLAGS)  # never used before: unknown
    _assert_limited(response)


def test_admin_api__token_used_before__keeps_working_while_address_limited(client, secrets):
    viewer = Caller(client, secrets["viewer"])
    assert viewer.get(FLAGS).status_code == 200
    _fail(Caller(client, BAD_TOKEN))
    assert viewer.get(FLAGS).status_code == 200


def test_admin_api__successes__never_counted(client, secrets):
    viewer = Caller(client, secrets["viewer"])
    for _ in range(5 * LIMIT):
        assert viewer.get(FLAGS).status_code == 200
    _fail(Caller(client, BAD_TOKEN))  # still the full budget of 401s


def test_admin_api__no_credential__plain_401_not_counted(anonymous):
    _fail(anonymous, times=5 * LIMIT)
    _fail(Caller(anonymous.client, BAD_TOKEN))


def test_admin_api__revoked_token__counted_after_its_first_failure(admin, client):
    created = admin.post("/api/v1/tokens", json={"name": "temp", "role": "viewer"}).json
    temp = Caller(client, created["token"])
    assert temp.get(FLAGS).status_code == 200  # known now: skips the limit...
    assert admin.delete(f"/api/v1/tokens/{created['id']}").status_code == 200
    _fail(temp)  # ...but still checked, so revocation is immediate, and then forgotten
    _assert_limited(temp.get(FLAGS))


def test_admin_api__other_address__not_limited(client):
    _fail(Caller(client, BAD_TOKEN))
    elsewhere = client.get(
        FLAGS,
        headers={"Authorization": f"Bearer {BAD_TOKEN}"},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert elsewhere.status_code == 401


def test_sdk_api__bad_keys__limited_like_tokens(client, secrets):
    _fail(Caller(client, BAD_SDK_KEY), SNAPSHOT)
    _assert_limited(Caller(client, BAD_SDK_KEY).get(SNAPSHOT))
    _assert_limited(Caller(client, BAD_TOKEN).get(FLAGS))  # one budget per address


def test_limited_attempt__logged_as_warning(client, caplog):
    guesser = Caller(client, BAD_TOKEN)
    _fail(guesser)
    with caplog.at_level(logging.WARNING, logger="flagsvc.services.auth_failures"):
        guesser.get(FLAGS)
    [record] = [r for r in caplog.records if "auth-failure limit" in r.getMessage()]
    assert "admin API" in record.getMessage() and "127.0.0.1" in record.getMessage()


def test_limited_attempts__one_log_line_per_address_and_period(client, caplog):
    guesser = Caller(client, BAD_TOKEN)
    _fail(guesser)
    with caplog.at_level(logging.WARNING, logger="flagsvc.services.auth_failures"):
        for _ in range(5):
            _assert_limited(guesser.get(FLAGS))
    assert len([r for r in caplog.records if "auth-failure limit" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "app_config", [{"auth_failure_limit": 2, "auth_failure_window_seconds": 1}]
)
def test_window__passed__address_may_try_again(client):
    guesser = Caller(client, BAD_TOKEN)
    _fail(guesser, times=2)
    _assert_limited(guesser.get(FLAGS), window=1)
    time.sleep(1.1)
    assert guesser.get(FLAGS).status_code == 401


@pytest.mark.parametrize("app_config", [{"auth_failure_limit": LIMIT, "proxy_hops": 1}])
def test_behind_one_proxy__forwarded_address_is_the_client(client):
    def guess(forwarded_for: str) -> int:
        headers = {"Authorization": f"Bearer {BAD_TOKEN}", "X-Forwarded-For": forwarded_for}
        return client.get(FLAGS, headers=headers).status_code

    assert [guess("203.0.113.5") for _ in range(LIMIT + 1)] == [401] * LIMIT + [429]
    assert guess("203.0.113.6") == 401  # another client behind the same proxy
    assert guess("198.51.100.1, 203.0.113.5") == 429  # a forged hop does not escape


# --- Redis: shared by every instance; never required ---------------------------------------


def _instance(database_url: str, redis_url: str) -> Any:
    overrides = {"auth_failure_limit": LIMIT, "auth_failure_window_seconds": 60}
    return create_app(
        {"database_url": database_url, "testing": True, "redis_url": redis_url, **overrides}
    )


def _close(*instances: Any) -> None:
    for instance in instances:
        instance.extensions["flagsvc"].close()


def test_redis__failures_on_one_instance__limit_the_address_on_another(
    database_url, redis_url, secrets
):
    a, b = _instance(database_url, redis_url), _instance(database_url, redis_url)
    try:
        _fail(Caller(a.test_client(), BAD_TOKEN), times=LIMIT - 1)
        _fail(Caller(b.test_client(), BAD_TOKEN), times=1)
        _assert_limited(Caller(a.test_client(), BAD_TOKEN).get(FLAGS))
        _assert_limited(Caller(b.test_client(), secrets["admin"]).get(FLAGS))
        keys = list(redis.Redis.from_url(redis_url).scan_iter(f"{KEY_PREFIX}*"))
        assert len(keys) == 1 and b"127.0.0.1" in keys[0]
    finally:
        _close(a, b)


def test_redis__unreachable__counts_in_process_and_never_fails_a_request(
    database_url, secrets, caplog
):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    instance = _instance(database_url, dead)
    try:
        client = instance.test_client()
        assert Caller(client, secrets["admin"]).get(FLAGS).status_code == 200
        _fail(Caller(client, BAD_TOKEN))
        _assert_limited(Caller(client, BAD_TOKEN).get(FLAGS))
        assert Caller(client, secrets["admin"]).get(FLAGS).status_code == 200
        assert any("auth-failure limit" in r.getMessage() for r in caplog.records)
    finally:
        _close(instance)
