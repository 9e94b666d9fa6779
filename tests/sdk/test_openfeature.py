"""The OpenFeature provider: five value types, reasons, error codes, events, via the API."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from flagsvc_sdk import Client
from flagsvc_sdk.openfeature import FlagsvcProvider
from flagsvc_sdk.testing import InMemoryClient
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from .conftest import FakeService
from .conftest import cohort_doc
from .conftest import flag_doc
from .conftest import snapshot_doc
from .conftest import wait_for

MakeClient = Callable[..., Client]
NL = EvaluationContext("user-1", {"country": "NL"})
US = EvaluationContext("user-1", {"country": "US"})


PAYLOADS: dict[str, Any] = {
    "bool-flag": None,
    "string-flag": "blue",
    "int-flag": 7,
    "float-flag": 2.5,
    "object-flag": {"color": "blue", "sizes": [1, 2]},
}


def _doc(version: int = 1) -> dict[str, Any]:
    """Flags of every payload type on cohort ``eu``, and one flag per flagsvc reason."""
    eu = cohort_doc("eu", rules=[{"attribute": "country", "op": "in", "values": ["NL", "DE"]}])
    after = {"attribute": "signup", "op": "after", "values": ["2026-01-01T00:00:00Z"]}
    flags = [
        flag_doc(key, stage="early_access", cohorts=["eu"], payload=p)
        for key, p in PAYLOADS.items()
    ]
    flags += [
        flag_doc("released-flag", stage="released"),
        flag_doc("off-flag", stage="off", payload="x"),
        flag_doc("killed-flag", stage="released", killed=True),
        flag_doc("rollout-flag", stage="general", rollout_percent=100),
        flag_doc("excluded-flag", stage="released", exclusions=["user-1"]),
        flag_doc("dated-flag", stage="early_access", cohorts=["launch"]),
        flag_doc("half-flag", stage="general", rollout_percent=50),
    ]
    return snapshot_doc(flags, [eu, cohort_doc("launch", rules=[after])], version=version)


@pytest.fixture
def of_client(service: FakeService, make_client: MakeClient) -> Iterator[OpenFeatureClient]:
    service.doc = _doc()
    client = make_client()
    api.set_provider_and_wait(FlagsvcProvider(client), domain="flagsvc-test")
    yield api.get_client("flagsvc-test")
    api.clear_providers()


@pytest.mark.parametrize(
    ("method", "flag", "default", "context", "value", "reason", "variant"),
    [
        ("get_boolean_details", "bool-flag", False, NL, True, Reason.TARGETING_MATCH, "on"),
        ("get_boolean_details", "bool-flag", True, US, False, Reason.DEFAULT, "off"),
        ("get_string_details", "string-flag", "red", NL, "blue", Reason.TARGETING_MATCH, "on"),
        ("get_string_details", "string-flag", "red", US, "red", Reason.DEFAULT, None),
        ("get_integer_details", "int-flag", 0, NL, 7, Reason.TARGETING_MATCH, "on"),
        ("get_float_details", "float-flag", 0.0, NL, 2.5, Reason.TARGETING_MATCH, "on"),
        ("get_object_details", "object-flag", {}, NL, {"color": "blue", "sizes": [1, 2]},
         Reason.TARGETING_MATCH, "on"),
        ("get_boolean_details", "released-flag", False, US, True, Reason.STATIC, "on"),
        ("get_string_details", "off-flag", "dflt", US, "dflt", Reason.DISABLED, None),
        ("get_boolean_details", "killed-flag", True, US, False, Reason.DISABLED, "off"),
        ("get_boolean_details", "rollout-flag", False, US, True, Reason.SPLIT, "on"),
        ("get_boolean_details", "excluded-flag", True, US, False, Reason.TARGETING_MATCH, "off"),
    ],
)  # fmt: skip
def test_provider__resolution__value_and_reason(
    of_client: OpenFeatureClient,
    method: str,
    flag: str,
    default: Any,
    context: EvaluationContext,
    value: Any,
    reason: Reason,
    variant: str | None,
) -> None:
    details = getattr(of_client, method)(flag, default, context)
    assert (details.value, details.reason, details.error_code) == (value, reason, None)
    assert details.variant == variant
    assert details.flag_metadata["version"] == 1


def test_provider__cohort_match__metadata_names_stage_and_cohort(
    of_client: OpenFeatureClient,
) -> None:
    details = of_client.get_boolean_details("bool-flag", False, NL)
    assert details.flag_metadata == {"stage": "early_access", "matched_cohort": "eu", "version": 1}


@pytest.mark.parametrize(
    ("method", "flag", "default"),
    [
        ("get_string_details", "int-flag", "red"),
        ("get_integer_details", "string-flag", 3),
        ("get_integer_details", "float-flag", 3),
        ("get_float_details", "string-flag", 1.5),
        ("get_object_details", "string-flag", {"d": 1}),
        ("get_string_details", "bool-flag", "red"),
        ("get_boolean_details", "string-flag", False),
        ("get_float_details", "int-flag", 0.0),  # the declared type decides, not the value
    ],
)
def test_provider__flag_of_other_type__type_mismatch_with_default(
    of_client: OpenFeatureClient, method: str, flag: str, default: Any
) -> None:
    details = getattr(of_client, method)(flag, default, NL)
    assert (details.value, details.reason, details.error_code) == (
        default,
        Reason.ERROR,
        ErrorCode.TYPE_MISMATCH,
    )


@pytest.mark.parametrize(
    ("flag", "context", "code"),
    [
        ("no-such-flag", NL, ErrorCode.FLAG_NOT_FOUND),
        ("half-flag", EvaluationContext(None, {"country": "NL"}), ErrorCode.TARGETING_KEY_MISSING),
        ("half-flag", None, ErrorCode.TARGETING_KEY_MISSING),
        ("bool-flag", EvaluationContext(None, {"key": 4.2}), ErrorCode.INVALID_CONTEXT),
    ],
)
def test_provider__errors__default_and_mapped_code(
    of_client: OpenFeatureClient, flag: str, context: EvaluationContext | None, code: ErrorCode
) -> None:
    details = of_client.get_boolean_details(flag, True, context)
    assert (details.value, details.reason, details.error_code) == (True, Reason.ERROR, code)


@pytest.mark.parametrize(
    ("context", "value", "reason"),
    [
        (EvaluationContext(None, {"country": "NL"}), True, Reason.TARGETING_MATCH),  # a rule
        (EvaluationContext(None, {"country": "US"}), False, Reason.DEFAULT),
        (None, False, Reason.DEFAULT),
    ],
)
def test_provider__no_targeting_key__evaluated_where_no_key_is_needed(
    of_client: OpenFeatureClient, context: EvaluationContext | None, value: bool, reason: Reason
) -> None:
    details = of_client.get_boolean_details("bool-flag", True, context)
    assert (details.value, details.reason, details.error_code) == (value, reason, None)


def test_provider__key_attribute_without_targeting_key__used(of_client: OpenFeatureClient) -> None:
    context = EvaluationContext(None, {"key": "user-1", "country": "NL"})
    assert of_client.get_boolean_value("bool-flag", False, context) is True


def test_provider__datetime_attribute__compared_by_after_rule(of_client: OpenFeatureClient) -> None:
    late = EvaluationContext("u", {"signup": datetime(2026, 6, 1, tzinfo=UTC)})
    early = EvaluationContext("u", {"signup": datetime(2025, 6, 1, tzinfo=UTC)})
    assert of_client.get_boolean_value("dated-flag", False, late) is True
    assert of_client.get_boolean_value("dated-flag", False, early) is False


def test_provider__new_snapshot__configuration_changed_event(
    service: FakeService, of_client: OpenFeatureClient
) -> None:
    events: list[EventDetails] = []
    of_client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, events.append)
    doc = _doc(version=2)
    doc["flags"]["string-flag"]["variations"]["on"] = "green"
    service.publish(doc)
    wait_for(lambda: events)
    assert events[0].flags_changed == ["string-flag"]
    assert events[0].metadata == {"version": 2}
    assert of_client.get_string_value("string-flag", "red", NL) == "green"


def test_provider__no_snapshot_at_start__not_ready_then_ready_event(
    service: FakeService, make_client: MakeClient
) -> None:
    # Given a service that is down when the provider starts
    service.down = True
    service.doc = _doc()
    provider = FlagsvcProvider(make_client(), ready_timeout=0.1)
    api.set_provider(provider, domain="late")
    of_client = api.get_client("late")
    ready: list[EventDetails] = []
    of_client.add_handler(ProviderEvent.PROVIDER_READY, ready.append)
    try:
        wait_for(lambda: of_client.get_provider_status() == ProviderStatus.ERROR)
        details = of_client.get_boolean_details("bool-flag", True, NL)
        assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
        # When the service comes back
        service.down = False
        # Then
        wait_for(lambda: of_client.get_provider_status() == ProviderStatus.READY)
        assert of_client.get_boolean_value("bool-flag", False, NL) is True
    finally:
        api.clear_providers()


def test_provider__shutdown__closes_client_only_when_owned() -> None:
    owned, shared = InMemoryClient(), InMemoryClient()
    FlagsvcProvider(owned, close_client=True).shutdown()
    FlagsvcProvider(shared).shutdown()
    assert owned.closed and not shared.closed


def test_provider__in_memory_client__works_as_source() -> None:
    flags = InMemoryClient()
    flags.set_flag("banner", True, payload="blue")
    api.set_provider_and_wait(FlagsvcProvider(flags), domain="memory")
    try:
        client = api.get_client("memory")
        assert client.get_string_value("banner", "red", EvaluationContext("u")) == "blue"
        assert (
            client.get_string_details("banner", "red", EvaluationContext("u")).reason
            == Reason.STATIC
        )
    finally:
        api.clear_providers()
