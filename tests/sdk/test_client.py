"""The client's public API: answers, the never-raise contract, the atomic swap, options."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import flagsvc_sdk
import httpx
import pytest
from flagsvc_sdk import Change
from flagsvc_sdk import Client
from flagsvc_sdk import ConfigurationError
from flagsvc_sdk import ErrorCode
from flagsvc_sdk import Evaluation
from flagsvc_sdk import Reason
from flagsvc_sdk import SdkError
from flagsvc_sdk import Stage

from .conftest import ExplodingMapping
from .conftest import FakeService
from .conftest import cohort_doc
from .conftest import eu_rollout_doc
from .conftest import flag_doc
from .conftest import snapshot_doc
from .conftest import wait_for

MakeClient = Callable[..., Client]
NL = {"key": "user-1", "country": "NL"}


def test_is_enabled__cohort_rule_matches__true(make_client: MakeClient) -> None:
    client = make_client()
    assert client.wait_until_ready(5)
    assert client.is_enabled("new-checkout", NL) is True


def test_is_enabled__rollout__about_half_of_other_users(make_client: MakeClient) -> None:
    client = make_client()
    client.wait_until_ready(5)
    on = sum(
        client.is_enabled("new-checkout", {"key": f"u{i}", "country": "US"}) for i in range(4000)
    )
    assert 1800 < on < 2200


def test_evaluate__cohort__reason_stage_cohort_and_version(make_client: MakeClient) -> None:
    client = make_client()
    client.wait_until_ready(5)
    assert client.evaluate("new-checkout", NL) == Evaluation(
        True, True, Reason.TARGETING_MATCH, Stage.GENERAL, "eu", None, 1, "on"
    )


def test_evaluate__unknown_flag__default_with_flag_not_found(make_client: MakeClient) -> None:
    client = make_client()
    client.wait_until_ready(5)
    evaluation = client.evaluate("retired-flag", NL, default="blue")
    assert (evaluation.value, evaluation.reason, evaluation.error_code) == (
        "blue",
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )
    assert client.is_enabled("retired-flag", NL, default=True) is True


@pytest.mark.parametrize(
    ("payload", "enabled_for", "default", "expected"),
    [
        ({"color": "blue"}, NL, "red", {"color": "blue"}),  # on: the on value
        ({"color": "blue"}, {"key": "u", "country": "US"}, "red", "red"),  # off, none: default
        (None, {"key": "u", "country": "US"}, "red", False),  # off: the off value
        (None, {"key": "u", "country": "US"}, True, False),
        (None, {"key": "u", "country": "US"}, None, False),
        (None, NL, "red", True),  # on: the on value
    ],
)
def test_evaluate__callers_default_rule(
    service: FakeService,
    make_client: MakeClient,
    payload: Any,
    enabled_for: Any,
    default: Any,
    expected: Any,
) -> None:
    service.doc = snapshot_doc(
        [flag_doc("f", stage="early_access", cohorts=["eu"], payload=payload)],
        [cohort_doc("eu", rules=[{"attribute": "country", "op": "eq", "values": ["NL"]}])],
    )
    client = make_client()
    client.wait_until_ready(5)
    assert client.evaluate("f", enabled_for, default).value == expected


def test_all_flags__every_flag__evaluated(service: FakeService, make_client: MakeClient) -> None:
    service.doc = snapshot_doc([flag_doc("a", stage="released"), flag_doc("b", stage="off")])
    client = make_client()
    client.wait_until_ready(5)
    flags = client.all_flags({"key": "u"})
    assert {k: (e.enabled, e.reason) for k, e in flags.items()} == {
        "a": (True, Reason.STATIC),
        "b": (False, Reason.DISABLED),
    }


GARBAGE: list[Any] = [
    None,
    "user-1",
    42,
    ["key", "u"],
    {},
    {"key": ""},
    {"key": 7},
    {"key": None},
    {"key": "u", "country": ["NL"]},
    {"key": "u", "country": {"nested": object()}},
    {"key": "u", "country": float("nan")},
    object(),
]


@pytest.mark.parametrize(
    "context", [*GARBAGE, ExplodingMapping()], ids=lambda context: type(context).__name__
)
@pytest.mark.parametrize("default", [True, False])
def test_is_enabled__garbage_context__default_or_answer_never_raises(
    make_client: MakeClient, context: Any, default: bool
) -> None:
    client = make_client()
    client.wait_until_ready(5)
    assert client.is_enabled("new-checkout", context, default) in (True, False)
    evaluation = client.evaluate("new-checkout", context, "dflt")
    assert evaluation.value in ("dflt", True, False)
    assert (evaluation.value == "dflt") is (evaluation.error_code is not None)
    client.all_flags(context)


def test_is_enabled__integer_key__same_as_its_digits(make_client: MakeClient) -> None:
    # (the README's example: {"key": user.id} with an integer id)
    client = make_client()
    client.wait_until_ready(5)
    for user_id in range(200):
        as_text = client.is_enabled("new-checkout", {"key": str(user_id), "country": "US"})
        assert client.is_enabled("new-checkout", {"key": user_id, "country": "US"}) is as_text
        assert client.evaluate("new-checkout", {"key": user_id}).error_code is None


def test_invalid_context__first_one_warns__later_ones_debug(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    client.wait_until_ready(5)
    caplog.set_level("DEBUG", logger="flagsvc_sdk")
    # When product code passes invalid contexts, again and again, by every path
    for _ in range(3):
        assert client.is_enabled("new-checkout", {"key": 4.2}, default=True) is True
        assert client.evaluate("new-checkout", {"key": ""}).error_code == "INVALID_CONTEXT"
    # Then one warning says what is wrong (not the values), the rest are debug
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert '"key" is a float' in warnings[0].getMessage()
    assert "4.2" not in warnings[0].getMessage()
    assert (
        sum(r.levelname == "DEBUG" and "invalid context" in r.getMessage() for r in caplog.records)
        == 5
    )


@pytest.mark.parametrize("flag_key", [None, 42, ["new-checkout"], {"a": 1}, "", "x" * 10_000])
def test_evaluation__garbage_flag_key__default(make_client: MakeClient, flag_key: Any) -> None:
    client = make_client()
    client.wait_until_ready(5)
    assert client.is_enabled(flag_key, NL, default=True) is True
    assert client.evaluate(flag_key, NL, "d").value == "d"


def test_evaluation__no_snapshot_yet__default_provider_not_ready(
    service: FakeService, make_client: MakeClient
) -> None:
    service.down = True
    client = make_client()
    assert client.wait_until_ready(0.2) is False
    assert client.is_enabled("new-checkout", NL, default=True) is True
    evaluation = client.evaluate("new-checkout", NL, "d")
    assert (evaluation.value, evaluation.reason, evaluation.error_code) == (
        "d",
        Reason.ERROR,
        ErrorCode.PROVIDER_NOT_READY,
    )
    assert client.all_flags(NL) == {}
    assert client.version is None


def test_evaluation__closed_client__keeps_answering(make_client: MakeClient) -> None:
    client = make_client()
    client.wait_until_ready(5)
    client.close()
    client.close()  # idempotent
    assert client.is_enabled("new-checkout", NL) is True
    assert client.evaluate("new-checkout", NL).enabled is True
    assert client.enroll("beta", NL) is False


def test_context_manager__exit__closes(service: FakeService) -> None:
    with Client(
        "http://flags.test", "k", transport=service.transport, send_metrics=False
    ) as client:
        assert client.wait_until_ready(5)
    assert client.enroll("beta", NL) is False


def _versioned(version: int) -> dict[str, Any]:
    """A released flag whose payload names the snapshot version it came in."""
    return snapshot_doc([flag_doc("f", stage="released", payload={"v": version})], version=version)


def _read_until(client: Client, stop: threading.Event, errors: list[object]) -> None:
    """Read as product code does; record any answer mixing two snapshots."""
    while not stop.is_set():
        evaluation = client.evaluate("f", {"key": "u"})
        if not isinstance(evaluation.value, dict) or evaluation.value["v"] != evaluation.version:
            errors.append(evaluation)
        if client.is_enabled("f", {"key": "u"}) is not True:
            errors.append("off")


def test_swap__readers_under_threads__never_see_a_mix(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given 4 threads reading while the snapshot is republished many times
    service.doc = _versioned(1)
    client = make_client(stream=False, poll_interval=0.001)
    client.wait_until_ready(5)
    stop, errors = threading.Event(), []
    readers = [threading.Thread(target=_read_until, args=(client, stop, errors)) for _ in range(4)]
    for reader in readers:
        reader.start()
    # When
    for version in range(2, 40):
        service.doc = _versioned(version)
        wait_for(lambda v=version: client.version == v)
    stop.set()
    for reader in readers:
        reader.join()
    # Then
    assert errors == []


def test_on_change__new_snapshot__listener_told_which_flags(
    service: FakeService, make_client: MakeClient
) -> None:
    changes: list[Change] = []
    client = make_client(on_change=changes.append)
    client.wait_until_ready(5)
    service.publish(eu_rollout_doc(version=2, rollout_percent=60))
    wait_for(lambda: client.version == 2)
    wait_for(lambda: len(changes) == 2)
    assert changes[0].flags_changed == ("new-checkout",) and changes[0].previous_version is None
    assert changes[1] == Change(2, 1, ("new-checkout",), "service")


def test_on_change__listener_raises__client_goes_on(
    service: FakeService, make_client: MakeClient
) -> None:
    def explode(change: Change) -> None:
        raise RuntimeError("listener bug")

    client = make_client(on_change=explode)
    client.wait_until_ready(5)
    service.publish(eu_rollout_doc(version=2, killed=True))
    wait_for(lambda: client.version == 2)
    assert client.is_enabled("new-checkout", NL) is False


def test_enroll__accepted__posts_cohort_and_context_then_refetches(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(stream=False, poll_interval=60)
    client.wait_until_ready(5)
    fetches = service.paths().count("/sdk/v1/snapshot")
    assert client.enroll("beta", NL) is True
    assert client.leave("beta", NL) is True
    assert ("/sdk/v1/enroll", {"cohort": "beta", "context": NL}) in service.posts
    assert ("/sdk/v1/leave", {"cohort": "beta", "context": NL}) in service.posts
    wait_for(lambda: service.paths().count("/sdk/v1/snapshot") > fetches)  # no 60 s wait


@pytest.mark.parametrize("status", [400, 403, 404, 500, 503])
def test_enroll__refused__false(service: FakeService, make_client: MakeClient, status: int) -> None:
    client = make_client()
    service.post_status = status
    assert client.enroll("beta", NL) is False


def test_enroll__service_down__false(service: FakeService, make_client: MakeClient) -> None:
    client = make_client()
    service.down = True
    assert client.enroll("beta", NL) is False
    assert client.leave("beta", NL) is False


@pytest.mark.parametrize(
    ("cohort", "context"), [("", NL), (None, NL), ("beta", None), ("beta", "u")]
)
def test_enroll__bad_arguments__false_without_request(
    service: FakeService, make_client: MakeClient, cohort: Any, context: Any
) -> None:
    client = make_client()
    assert client.enroll(cohort, context) is False
    assert not service.posts


def test_enroll__unserialisable_context__false(make_client: MakeClient) -> None:
    client = make_client()
    assert client.enroll("beta", {"key": "u", "when": object()}) is False


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("flags.example.com", {}),
        ("ftp://flags.example.com", {}),
        ("http://", {}),
        ("http://exa mple.com:99999", {}),
        ("http://exa mple.com", {}),
        (None, {}),
        ("http://flags.test", {"poll_interval": 0}),
        ("http://flags.test", {"timeout": -1}),
        ("http://flags.test", {"metrics_interval": float("inf")}),
        ("http://flags.test", {"poll_interval": "30"}),
    ],
)
def test_client__bad_configuration__configuration_error(url: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Client(url, "sdk-key", **options)
    assert isinstance(raised.value, SdkError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("sdk_key", ["", "  ", None])
def test_client__empty_sdk_key__configuration_error(sdk_key: Any) -> None:
    with pytest.raises(ConfigurationError, match="sdk_key"):
        Client("http://flags.test", sdk_key)


def test_client__requests__carry_bearer_key_and_user_agent(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client()
    client.wait_until_ready(5)
    request = service.requests[0]
    assert request.headers["Authorization"] == "Bearer sdk-key"
    assert request.headers["User-Agent"] == f"flagsvc-python-sdk/{flagsvc_sdk.__version__}"


def test_client__url_with_path_prefix__kept(service: FakeService) -> None:
    with Client("http://proxy.test/flags", "k", transport=service.transport, send_metrics=False):
        wait_for(lambda: service.requests)  # the fake serves only unprefixed paths
    assert service.requests[0].url == httpx.URL("http://proxy.test/flags/sdk/v1/snapshot")


def test_transport__plain_object_with_handle_request__works(service: FakeService) -> None:
    class Plain:
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return service.handle(request)

    with Client(
        "http://flags.test", "k", transport=Plain(), stream=False, send_metrics=False
    ) as client:
        assert client.wait_until_ready(5)
        assert client.is_enabled("new-checkout", NL)
