"""OpenFeature's own Gherkin suites, run against ``FlagsvcProvider`` over a live service.

The feature files are vendored unchanged (``features/README.md``); these are our step
definitions. Values in the scenarios are text: each is read as the type of the flag
evaluated (``"true"`` a boolean, ``"10"`` an integer, ``{\\"a\\": 1}`` an object).
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.flag_evaluation import FlagEvaluationOptions
from openfeature.hook import Hook
from openfeature.hook import HookContext
from openfeature.provider import ProviderStatus
from pytest_bdd import given
from pytest_bdd import parsers
from pytest_bdd import scenarios
from pytest_bdd import then
from pytest_bdd import when

from tests.live_helpers import wait_for

from .conftest import Providers

scenarios("features")

World = dict[str, Any]


@pytest.fixture
def world() -> World:
    """One scenario's state: the client, the flag asked for, the context, the answer."""
    return {"attributes": {}, "hooks": []}


def _text(value: str) -> str:
    """A table cell or quoted text: Gherkin keeps ``\\"`` as written."""
    return value.replace('\\"', '"')


def _typed(kind: str, value: str) -> Any:
    """``value`` read as OpenFeature type ``kind`` (Boolean, String, Integer, Float, Object)."""
    kind = kind.lower()
    if kind == "boolean":
        return {"true": True, "false": False}[value]
    if kind == "integer":
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "object":
        return json.loads(_text(value)) if value else {}
    return _text(value)


def _client(providers: Providers, state: str) -> OpenFeatureClient:
    client = api.get_client(providers.domain(state))
    expected = {"stable": ProviderStatus.READY, "not ready": ProviderStatus.NOT_READY,
                "error": ProviderStatus.ERROR, "fatal": ProviderStatus.FATAL,
                "stale": ProviderStatus.STALE}[state]  # fmt: skip
    wait_for(lambda: client.get_provider_status() is expected, timeout=15)
    return client


def _evaluate(world: World, *, asynchronous: bool = False, options: Any = None) -> Any:
    kind, key, default = world["flag"]
    client: OpenFeatureClient = world["client"]
    attributes = world["attributes"]
    context = EvaluationContext(None, attributes) if attributes else None
    suffix = "_details_async" if asynchronous else "_details"
    method = getattr(client, f"get_{kind.lower()}{suffix}")
    if asynchronous:
        return asyncio.run(method(key, default, context, options))
    return method(key, default, context, options)


# --- providers -------------------------------------------------------------------------


@given("a stable provider")
@given("a provider is registered")
def stable_provider(world: World, providers: Providers) -> None:
    world["client"] = _client(providers, "stable")


@given(parsers.re(r"an? (?P<state>not ready|error|fatal|stale|stable) provider"))
def provider_in_state(world: World, providers: Providers, state: str) -> None:
    world["client"] = _client(providers, state)


@then(parsers.parse('the provider status should be "{status}"'))
def provider_status(world: World, status: str) -> None:
    assert world["client"].get_provider_status() is ProviderStatus[status]


# --- evaluation_v2, hooks, metadata: a flag, then "evaluated with details" --------------


@given(parsers.parse('a {kind}-flag with key "{key}" and a default value "{default}"'))
@given(parsers.parse('a {kind}-flag with key "{key}" and a fallback value "{default}"'))
def a_flag(world: World, kind: str, key: str, default: str) -> None:
    world["flag"] = (kind, key, _typed(kind, default))


@given(
    parsers.parse('a context containing a key "{key}", with type "{kind}" and with value "{value}"')
)
def context_value(world: World, key: str, kind: str, value: str) -> None:
    world["attributes"][key] = _typed(kind, value)


@given(parsers.parse('a context containing a key "{key}" with null value'))
def context_null(world: World, key: str) -> None:
    world["attributes"][key] = None


@given("an evaluation context with modifiable data")
def modifiable_context(world: World) -> None:
    world["attributes"].update({"email": "ballmer@macrosoft.com", "tags": ["a", "b"]})
    world["attributes_before"] = copy.deepcopy(world["attributes"])


@when("the flag was evaluated with details")
def evaluated(world: World) -> None:
    world["details"] = _evaluate(world)


@when("the flag was evaluated with details asynchronously")
def evaluated_async(world: World) -> None:
    world["details"] = _evaluate(world, asynchronous=True)


@then(parsers.re(r'the resolved details value should be "(?P<value>.*)"$'))
def details_value(world: World, value: str) -> None:
    kind = world["flag"][0]
    assert world["details"].value == _typed(kind, value)
    if kind.lower() == "float":
        assert isinstance(world["details"].value, float)


@then(parsers.parse('the reason should be "{reason}"'))
def details_reason(world: World, reason: str) -> None:
    assert world["details"].reason == reason


@then(parsers.parse('the error-code should be "{code}"'))
def details_error_code(world: World, code: str) -> None:
    assert world["details"].error_code == code


@then(parsers.parse('the flag key should be "{key}"'))
def details_flag_key(world: World, key: str) -> None:
    assert world["details"].flag_key == key


@then(parsers.parse('the variant should be "{variant}"'))
def details_variant(world: World, variant: str) -> None:
    assert world["details"].variant == variant


@then(parsers.parse('the error message should contain "{text}"'))
def details_error_message(world: World, text: str) -> None:
    assert text in (world["details"].error_message or "")


@then("the original evaluation context should remain unmodified")
def context_unmodified(world: World) -> None:
    assert world["attributes"] == world["attributes_before"]


@then("the evaluation details should be immutable")
def details_immutable(world: World) -> None:
    # (spec 1.4.14.1: the flag metadata is immutable; the details object is the SDK's own)
    with pytest.raises(TypeError):
        world["details"].flag_metadata["stage"] = "released"


@then("the evaluation should complete without blocking")
def async_completed(world: World) -> None:
    assert isinstance(world["details"], FlagEvaluationDetails)


# --- hooks ----------------------------------------------------------------------------------


class Recorder(Hook):
    """Records each stage it is called at, with the details where there are some."""

    def __init__(self, name: str, calls: list[tuple[str, str, Any]]) -> None:
        self.name, self.calls = name, calls

    def before(self, hook_context: HookContext, hints: Any) -> None:
        self.calls.append((self.name, "before", None))

    def after(self, hook_context: HookContext, details: Any, hints: Any) -> None:
        self.calls.append((self.name, "after", details))

    def error(self, hook_context: HookContext, exception: Exception, hints: Any) -> None:
        self.calls.append((self.name, "error", exception))

    def finally_after(self, hook_context: HookContext, details: Any, hints: Any) -> None:
        self.calls.append((self.name, "finally", details))


@given("a client with added hook")
def client_with_hook(world: World) -> None:
    world["client"].add_hooks([Recorder("client", world["hooks"])])


@given("evaluation options containing specific hooks")
def options_with_hooks(world: World) -> None:
    world["options"] = FlagEvaluationOptions(
        hooks=[Recorder("first", world["hooks"]), Recorder("second", world["hooks"])]
    )


@when("the flag was evaluated with details using the evaluation options")
def evaluated_with_options(world: World) -> None:
    world["details"] = _evaluate(world, options=world["options"])


@then(parsers.parse('the "{stage}" hook should have been executed'))
def hook_executed(world: World, stage: str) -> None:
    assert any(called == stage for _, called, _ in world["hooks"])


@then(parsers.parse('the "{stages}" hooks should be called with evaluation details'))
def hooks_with_details(world: World, stages: str, datatable: list[list[str]]) -> None:
    for stage in (s.strip() for s in stages.split(",")):
        [details] = [d for _, called, d in world["hooks"] if called == stage]
        for kind, field, expected in datatable[1:]:
            got = getattr(details, field)
            want = None if expected in ("null", "None") else _typed(kind, expected)
            assert (got if got is None or kind != "string" else str(got)) == want, field


@then("the specified hooks should execute during evaluation")
def specified_hooks_ran(world: World) -> None:
    assert {(name, stage) for name, stage, _ in world["hooks"]} >= {
        ("first", "before"), ("second", "before"), ("first", "after"), ("second", "after")
    }  # fmt: skip


@then("the hook order should be maintained")
def hook_order(world: World) -> None:
    order = [(name, stage) for name, stage, _ in world["hooks"] if stage in ("before", "after")]
    assert order == [("first", "before"), ("second", "before"),
                     ("second", "after"), ("first", "after")]  # fmt: skip


# --- metadata ------------------------------------------------------------------------------


@then("the resolved metadata should contain")
def metadata_contains(world: World, datatable: list[list[str]]) -> None:
    metadata = world["details"].flag_metadata
    for key, kind, value in datatable[1:]:
        assert metadata.get(key) == _typed(kind, value), key


@then("the resolved metadata is empty")
def metadata_empty(world: World) -> None:
    assert not world["details"].flag_metadata


# --- evaluation.feature (deprecated upstream; its own phrasing) ----------------------------

KINDS = {"a boolean": "Boolean", "a string": "String", "an integer": "Integer",
         "a float": "Float", "an object": "Object"}  # fmt: skip


def _old_evaluate(world: World, kind: str, key: str, default: Any, details: bool) -> None:
    world["flag"] = (kind, key, default)
    world["details"] = _evaluate(world)
    world["value"] = world["details"].value if not details else None


@when(
    parsers.re(
        r'(?P<article>a boolean|a string|an integer|a float) flag with key "(?P<key>[^"]+)" '
        r'is evaluated with (?P<details>details and )?default value "?(?P<default>[^"]+)"?$'
    )
)
def old_evaluated(world: World, article: str, key: str, details: str | None, default: str) -> None:
    kind = KINDS[article]
    _old_evaluate(world, kind, key, _typed(kind, default), bool(details))


@when(
    parsers.re(
        r'an object flag with key "(?P<key>[^"]+)" is evaluated with '
        r"(?P<details>details and )?a null default value"
    )
)
def old_object_evaluated(world: World, key: str, details: str | None) -> None:
    _old_evaluate(world, "Object", key, {}, bool(details))


@then(
    parsers.re(
        r'the resolved (?P<kind>boolean|string|integer|float) value should be "?(?P<value>[^"]+)"?$'
    )
)
def old_value(world: World, kind: str, value: str) -> None:
    assert world["details"].value == _typed(kind, value)


@then(
    parsers.re(
        r"the resolved (?P<kind>boolean|string|integer|float) details value should be "
        r'"?(?P<value>[^",]+)"?, the variant should be "(?P<variant>[^"]+)", and the reason '
        r'should be "(?P<reason>[^"]+)"'
    )
)
def old_details(world: World, kind: str, value: str, variant: str, reason: str) -> None:
    details = world["details"]
    assert (details.value, details.variant, details.reason) == (
        _typed(kind, value),
        variant,
        reason,
    )


@then(
    parsers.re(
        r'the resolved object (?:details )?value should be contain fields "(?P<f1>[^"]+)", '
        r'"(?P<f2>[^"]+)", and "(?P<f3>[^"]+)", with values "(?P<v1>[^"]+)", "(?P<v2>[^"]+)" '
        r"and (?P<v3>\d+), respectively"
    )
)
def old_object_fields(world: World, f1: str, f2: str, f3: str, v1: str, v2: str, v3: str) -> None:
    value = world["details"].value
    assert (value[f1], value[f2], value[f3]) == (_typed("Boolean", v1), v2, int(v3))


@then(parsers.parse('the variant should be "{variant}", and the reason should be "{reason}"'))
def old_variant_reason(world: World, variant: str, reason: str) -> None:
    assert (world["details"].variant, world["details"].reason) == (variant, reason)


@when(
    parsers.re(
        r'context contains keys "(?P<k1>[^"]+)", "(?P<k2>[^"]+)", "(?P<k3>[^"]+)", '
        r'"(?P<k4>[^"]+)" with values "(?P<v1>[^"]+)", "(?P<v2>[^"]+)", (?P<v3>\d+), '
        r'"(?P<v4>[^"]+)"'
    )
)
def old_context(
    world: World, k1: str, k2: str, k3: str, k4: str, v1: str, v2: str, v3: str, v4: str
) -> None:
    world["attributes"].update({k1: v1, k2: v2, k3: int(v3), k4: _typed("Boolean", v4)})


@when(parsers.parse('a flag with key "{key}" is evaluated with default value "{default}"'))
def old_flag_in_context(world: World, key: str, default: str) -> None:
    _old_evaluate(world, "String", key, default, False)


@then(parsers.parse('the resolved string response should be "{value}"'))
def old_string_response(world: World, value: str) -> None:
    assert world["details"].value == value


@then(parsers.parse('the resolved flag value is "{value}" when the context is empty'))
def old_empty_context(world: World, value: str) -> None:
    world["attributes"] = {}
    _kind, key, default = world["flag"]
    assert _evaluate({**world, "flag": ("String", key, default)}).value == value


@when(
    parsers.parse(
        'a non-existent string flag with key "{key}" is evaluated with details and a '
        'default value "{default}"'
    )
)
def old_missing(world: World, key: str, default: str) -> None:
    _old_evaluate(world, "String", key, default, True)


@when(
    parsers.parse(
        'a string flag with key "{key}" is evaluated as an integer, with details and a '
        "default value {default:d}"
    )
)
def old_wrong_type(world: World, key: str, default: int) -> None:
    _old_evaluate(world, "Integer", key, default, True)


@then(parsers.re(r"the default (?P<kind>string|integer) value should be returned"))
def old_default_returned(world: World, kind: str) -> None:
    assert world["details"].value == world["flag"][2]


@then(
    parsers.re(
        r"the reason should indicate an error and the error code should indicate a "
        r'(?:missing flag|type mismatch) with "(?P<code>[^"]+)"'
    )
)
def old_error(world: World, code: str) -> None:
    assert (world["details"].reason, world["details"].error_code) == ("ERROR", code)
