"""Moving-window counters: shared by every instance through Redis, per process without it."""

from __future__ import annotations

from flagsvc.services.rate_limits import SharedCounter
from tests.live import free_port


def _counter(redis_url: str | None, amount: int = 2) -> SharedCounter:
    return SharedCounter(amount, 60, namespace="test-limit", redis_url=redis_url)


def test_shared_counter__two_instances_on_redis__one_budget(redis_url):
    a, b = _counter(redis_url), _counter(redis_url)
    assert (a.take("key-1"), b.take("key-1")) == (0, 0)
    wait = a.take("key-1")
    assert (1 <= wait <= 60 and b.retry_after("key-1") == wait) or b.retry_after("key-1") > 0
    assert b.take("key-2") == 0  # another key has its own budget


def test_shared_counter__without_redis__each_process_counts_alone():
    a, b = _counter(None), _counter(None)
    assert [a.take("k"), a.take("k"), b.take("k")] == [0, 0, 0]
    assert a.take("k") > 0


def test_shared_counter__redis_unreachable__counts_locally_never_raises():
    down = _counter(f"redis://127.0.0.1:{free_port()}/0")
    assert [down.take("k"), down.take("k")] == [0, 0]
    assert down.take("k") > 0
