"""Evaluation counts: exact under threads, batched, flushed on close, failures dropped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

from flagsvc_sdk import Client
from flagsvc_sdk.checks import Counters
from flagsvc_sdk.metrics import MAX_BATCH
from flagsvc_sdk.metrics import batch_body

from .conftest import FakeService
from .conftest import flag_doc
from .conftest import snapshot_doc
from .conftest import wait_for

MakeClient = Callable[..., Client]
NL = {"key": "user-1", "country": "NL"}


def _metrics(service: FakeService) -> list[dict[str, object]]:
    return [
        entry
        for path, body in service.posts
        if path == "/sdk/v1/metrics"
        for entry in body["evaluations"]
    ]


def test_counters__take__counts_since_previous_take() -> None:
    counters = Counters()
    tick = counters.tick("a")
    for _ in range(5):
        tick()
    assert counters.take() == {"a": 5}
    assert counters.take() == {}
    tick()
    assert counters.take() == {"a": 1}


def test_counters__eight_threads__no_increment_lost() -> None:
    counters = Counters()
    taken: list[dict[str, int]] = []

    def work() -> None:
        tick = counters.tick("a")
        for _ in range(50_000):
            tick()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        taken.append(counters.take())  # concurrent takes must not lose or double count
    taken.append(counters.take())
    assert sum(batch.get("a", 0) for batch in taken) == 400_000


def test_batch_body__shape_and_utc_stamp() -> None:
    at = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    assert batch_body({"b": 2, "a": 1, "z": 0}, at) == {
        "evaluations": [
            {"flag": "a", "count": 1, "last_evaluated_at": "2026-11-22T10:30:00Z"},
            {"flag": "b", "count": 2, "last_evaluated_at": "2026-11-22T10:30:00Z"},
        ]
    }


def test_metrics__interval__counts_of_every_api_posted(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(send_metrics=True, metrics_interval=0.05)
    client.wait_until_ready(5)
    for _ in range(10):
        client.is_enabled("new-checkout", NL)
    client.evaluate("new-checkout", NL)
    client.all_flags(NL)
    client.is_enabled("unknown", NL)  # unknown flags are not counted
    wait_for(lambda: sum(e["count"] for e in _metrics(service)) == 12)
    assert {e["flag"] for e in _metrics(service)} == {"new-checkout"}
    assert client.stats.metrics_sent >= 1


def test_metrics__close__flushes_what_is_left(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(send_metrics=True, metrics_interval=3600)
    client.wait_until_ready(5)
    for _ in range(7):
        client.is_enabled("new-checkout", NL)
    client.close()
    assert _metrics(service) == [
        {
            "flag": "new-checkout",
            "count": 7,
            "last_evaluated_at": _metrics(service)[0]["last_evaluated_at"],
        }
    ]


def test_metrics__nothing_evaluated__nothing_posted(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(send_metrics=True, metrics_interval=0.02)
    client.wait_until_ready(5)
    client.close()
    assert _metrics(service) == []


def test_metrics__service_refuses__batch_dropped_not_retried(
    service: FakeService, make_client: MakeClient
) -> None:
    service.post_status = 503
    client = make_client(send_metrics=True, metrics_interval=3600)
    client.wait_until_ready(5)
    client.is_enabled("new-checkout", NL)
    client.close()
    assert client.stats.metrics_dropped == 1
    assert len(service.posts) == 1


def test_metrics__service_down__close_does_not_raise(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(send_metrics=True, metrics_interval=3600)
    client.wait_until_ready(5)
    client.is_enabled("new-checkout", NL)
    service.down = True
    client.close()
    assert client.stats.metrics_dropped == 1


def test_metrics__more_flags_than_a_batch__split(
    service: FakeService, make_client: MakeClient
) -> None:
    service.doc = snapshot_doc(
        [flag_doc(f"f{i:04}", stage="released") for i in range(MAX_BATCH + 5)]
    )
    client = make_client(send_metrics=True, metrics_interval=3600)
    client.wait_until_ready(5)
    client.all_flags({"key": "u"})
    client.close()
    sizes = [len(body["evaluations"]) for path, body in service.posts if path == "/sdk/v1/metrics"]
    assert sizes == [MAX_BATCH, 5]


def test_metrics__disabled__no_thread_no_posts(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(send_metrics=False)
    client.wait_until_ready(5)
    client.is_enabled("new-checkout", NL)
    client.close()
    assert _metrics(service) == []
