"""Evaluation counts: exact under threads, batched, flushed on close, failures dropped."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC
from datetime import datetime

from flagsvc_sdk import Client
from flagsvc_sdk._checks import Counters
from flagsvc_sdk._checks import Taken
from flagsvc_sdk._metrics import MAX_ADOPTERS
from flagsvc_sdk._metrics import MAX_BATCH
from flagsvc_sdk._metrics import adopter_hash
from flagsvc_sdk._metrics import batch_body
from flagsvc_sdk.stats import Stats

from .conftest import FakeService
from .conftest import flag_doc
from .conftest import snapshot_doc
from .conftest import wait_for

MakeClient = Callable[..., Client]
NL = {"key": "user-1", "country": "NL"}
US = {"key": "user-2", "country": "US"}


def _metrics(service: FakeService) -> list[dict[str, object]]:
    return [
        entry
        for path, body in service.posts
        if path == "/sdk/v1/metrics"
        for entry in body["evaluations"]
    ]


def test_counters__take__counts_since_previous_take() -> None:
    counters = Counters()
    tally = counters.tally("a")
    for _ in range(5):
        tally.count += 1.0
    tally.count += 2.0  # one answered on by a cohort, one by the rollout
    tally.cohort += 1.0
    assert counters.take() == {"a": Taken(7, 1)}
    assert counters.take() == {}
    tally.count += 1.0
    tally.cohort += 1.0
    taken = counters.take()
    assert taken == {"a": Taken(1, 1)}
    assert type(taken["a"].evaluations) is int and type(taken["a"].cohort) is int  # JSON integers


def test_counters__tally__same_object_across_calls() -> None:
    counters = Counters()
    assert counters.tally("a") is counters.tally("a")
    assert counters.tally("a") is not counters.tally("b")


def _gil_enabled() -> bool:
    is_gil_enabled: Callable[[], bool] = getattr(sys, "_is_gil_enabled", lambda: True)
    return is_gil_enabled()


def test_counters__eight_threads__no_increment_lost_under_the_gil(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given eight threads evaluating while the reporter takes counts every 5 ms
    client = make_client(send_metrics=True, metrics_interval=0.005)
    client.wait_until_ready(5)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows

    def work() -> None:
        for i in range(20_000):
            client.is_enabled("new-checkout", {"key": f"u{i}", "country": "US"})

    threads = [threading.Thread(target=work) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    client.close()  # flushes the rest
    total = sum(entry["count"] for entry in _metrics(service))
    # Then exact with the GIL; without it, racing increments may be lost (checks.Tally)
    if _gil_enabled():
        assert total == 160_000
    else:
        assert 0 < total <= 160_000
    assert client.stats.metrics_sent > 1  # takes really ran while threads counted


def test_batch_body__shape_and_utc_stamp() -> None:
    at = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    counts = {"b": Taken(2, 2), "a": Taken(1), "z": Taken(0)}
    assert batch_body(counts, at) == {
        "evaluations": [
            {"flag": "a", "count": 1, "last_evaluated_at": "2026-11-22T10:30:00Z"},
            {
                "flag": "b",
                "count": 2,
                "last_evaluated_at": "2026-11-22T10:30:00Z",
                "reasons": {"COHORT": 2},
            },
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


def test_metrics__every_evaluation_path__counted_once(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given the set-shape flag (inline is_enabled, compiled resolver) and a released one
    service.doc["flags"]["old"] = flag_doc("old", stage="released")
    client = make_client(send_metrics=True, metrics_interval=3600)
    client.wait_until_ready(5)
    # When each flag goes through every path once, plus unknown flags
    for flag_key in ("new-checkout", "old", "nope"):
        client.is_enabled(flag_key, NL)
        client.evaluate(flag_key, NL)  # the resolver
        client.evaluate(flag_key, NL, "fallback")  # the engine, with a caller's default
        client.evaluate(flag_key, {"key": ["unhashable"]})  # an invalid context counts too
    client.all_flags(NL)
    client.close()
    # Then
    assert {e["flag"]: e["count"] for e in _metrics(service)} == {"new-checkout": 5, "old": 5}


def test_metrics__every_evaluation_path__cohort_answers_reported_as_reasons(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given the set-shape flag (cohort eu: NL, DE; 50 % rollout) and one the engine runs
    beta = {"attribute": "plan", "op": "neq", "values": ["free"]}
    service.doc["flags"]["two"] = flag_doc("two", stage="early_access", cohorts=["eu", "beta"])
    service.doc["cohorts"]["beta"] = {
        "key": "beta",
        "members": [],
        "rules": [beta],
        "opt_in": False,
    }
    client = make_client(send_metrics=True, metrics_interval=3600)
    client.wait_until_ready(5)
    # When an NL user (in the cohort) and a US user (not) go through every path
    for flag_key in ("new-checkout", "two"):
        for context in (NL, US):
            client.is_enabled(flag_key, context)
            client.evaluate(flag_key, context)
            client.evaluate(flag_key, context, "fallback")
            client.is_enabled(flag_key, dict(context, plan="gold"))  # beta's rule (flag two)
    client.all_flags(NL)
    client.close()
    # Then every answer on through a cohort is reported under COHORT, nothing else is
    reported = {e["flag"]: (e["count"], e.get("reasons")) for e in _metrics(service)}
    assert reported == {"new-checkout": (9, {"COHORT": 5}), "two": (9, {"COHORT": 6})}


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
            "reasons": {"COHORT": 7},  # NL users are in the cohort eu
            "early_adopters": [adopter_hash("new-checkout", NL["key"])],  # one user, hashed
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


def test_metrics__every_evaluation_path__early_adopters_hashed_once_each(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given the set-shape flag (cohort eu: NL, DE) evaluated on every path
    client = make_client(send_metrics=True, metrics_interval=3600)
    client.wait_until_ready(5)
    nl_too = {"key": "user-3", "country": "NL"}
    for context in (NL, US, nl_too, NL):
        client.is_enabled("new-checkout", context)
        client.evaluate("new-checkout", context)
    client.close()
    # Then the two NL users go out once each, hashed (never the raw key), US not at all
    (entry,) = [e for e in _metrics(service) if e["flag"] == "new-checkout"]
    assert sorted(entry["early_adopters"]) == sorted(  # type: ignore[call-overload]
        [adopter_hash("new-checkout", "user-1"), adopter_hash("new-checkout", "user-3")]
    )
    assert "user-1" not in str(service.posts)


def test_counters__take__drains_adopters_and_keeps_late_ones() -> None:
    counters = Counters()
    tally = counters.tally("a")
    tally.count += 2.0
    tally.cohort += 2.0
    tally.adopters["u1"] = None
    tally.adopters["u2"] = None
    assert counters.take() == {"a": Taken(2, 2, ("u1", "u2"))}
    tally.count += 1.0
    tally.cohort += 1.0
    tally.adopters["u1"] = None  # the same user again, in a later batch: reported again
    assert counters.take() == {"a": Taken(1, 1, ("u1",))}
    assert tally.adopters == {}


def test_batch_body__adopters_above_the_limit__left_out_and_counted() -> None:
    stats = Stats()
    keys = tuple(f"u{n}" for n in range(MAX_ADOPTERS + 5))
    body = batch_body({"a": Taken(len(keys), len(keys), keys)}, datetime.now(UTC), stats)
    (entry,) = body["evaluations"]  # type: ignore[misc]
    assert len(entry["early_adopters"]) == MAX_ADOPTERS and stats.adopters_dropped == 5
