"""The engine's golden cases (``spec/``) run through the SDK client, via MockTransport.

Each snapshot is served by a fake service; the client downloads, validates and compiles
it, and must answer every case as the engine does: ``evaluate`` field by field, and
``is_enabled`` (the SDK's own compiled fast path) with the same on/off, or the caller's
default where the engine reports an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flagsvc_sdk import Client
from flagsvc_sdk import Evaluation
from flagsvc_sdk.engine import dump_snapshot

from .conftest import FakeService
from .conftest import cohort_doc
from .conftest import flag_doc
from .conftest import snapshot_doc
from .conftest import wait_for

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec"
Doc = dict[str, Any]


@cache
def _spec(name: str) -> Doc:
    return json.loads((SPEC_DIR / name).read_text(encoding="utf-8"))


def _cases(name: str) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in _spec(name)["cases"]]


DEFAULTS: dict[str, Any] = {
    "boolean": "not a boolean",
    "string": 123,
    "integer": "not an integer",
    "float": "not a float",
    "object": "not an object",
}
"""A default of another type per flag type: it can never be mistaken for a served value."""


def _wire(evaluation: Evaluation[Any]) -> str:
    """Compare as JSON so that 0 and false, or 1 and true, stay different."""
    fields = ("enabled", "value", "reason", "matched_cohort", "error_code", "variation")
    return json.dumps({field: getattr(evaluation, field) for field in fields}, sort_keys=True)


class Clients:
    """One client per snapshot document, shared by the cases of a module."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}

    def for_doc(self, doc: Doc) -> Client:
        key = json.dumps(doc, sort_keys=True)
        if key not in self._clients:
            service = FakeService(doc)
            client = Client(
                "http://flags.test",
                "k",
                transport=service.transport,
                stream=False,
                poll_interval=3600,
                send_metrics=False,
            )
            assert client.wait_until_ready(5), "the spec snapshot must load"
            self._clients[key] = client
        return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


@pytest.fixture(scope="module")
def clients() -> Iterator[Clients]:
    pool = Clients()
    yield pool
    pool.close()


@pytest.mark.parametrize("case", _cases("evaluation.json"))
def test_spec_evaluation__through_client__same_result(clients: Clients, case: Doc) -> None:
    # Given
    doc = _spec("evaluation.json")["snapshots"][case["snapshot"]]
    client = clients.for_doc(doc)
    expected = case["expected"]
    # When
    evaluation = client.evaluate(case["flag"], case["context"])
    # Then
    assert _wire(evaluation) == json.dumps(expected, sort_keys=True)
    assert evaluation.version == doc["version"]
    for default in (True, False):
        want = default if expected["error_code"] else expected["enabled"]
        assert client.is_enabled(case["flag"], case["context"], default) is want
    value_type = doc["flags"].get(case["flag"], {}).get("type")
    if value_type is not None:  # the typed getter of the flag's type: the same answer
        default = DEFAULTS[value_type]
        details = getattr(client, f"get_{value_type}_details")(
            case["flag"], case["context"], default
        )
        served = expected["value"] if expected["value"] is not None else default
        assert (details.value, details.variation) == (served, expected["variation"])
        getter = getattr(client, f"get_{value_type}")
        assert json.dumps(getter(case["flag"], case["context"], default)) == json.dumps(served)


@pytest.mark.parametrize("case", _cases("operators.json"))
def test_spec_rule__through_client__cohort_match_as_expected(clients: Clients, case: Doc) -> None:
    # Given a flag in early access whose only cohort has only this rule and no members
    doc = snapshot_doc(
        [flag_doc("f", stage="early_access", cohorts=["c"])],
        [cohort_doc("c", rules=[case["rule"]])],
    )
    client = clients.for_doc(doc)
    # When
    evaluation = client.evaluate("f", case["context"])
    # Then
    assert evaluation.reason == ("TARGETING_MATCH" if case["expected"] else "DEFAULT")
    assert client.is_enabled("f", case["context"]) is case["expected"]


@pytest.mark.parametrize("case", _cases("snapshots.json"))
def test_spec_snapshot_validation__served__loaded_or_rejected(case: Doc) -> None:
    service = FakeService()
    service.snapshot_body = json.dumps(case["snapshot"]).encode()
    with Client(
        "http://flags.test", "k", transport=service.transport, stream=False, send_metrics=False
    ) as client:
        if case["valid"]:
            assert client.wait_until_ready(5)
        else:  # refused: counted, and the client still answers defaults
            wait_for(lambda: client.stats.snapshots_rejected > 0)
            assert client.wait_until_ready(0) is False
            assert client.version is None
        assert client.stats.snapshots_rejected == (0 if case["valid"] else 1)


def _patch_cases() -> list[Any]:
    return [
        case
        for case in _cases("patches.json")
        if case.values[0]["snapshot"] == "base"
        and case.values[0]["patch"]["version"] != case.values[0]["patch"]["from_version"]
    ]


@pytest.mark.parametrize("case", _patch_cases())
def test_spec_patch__through_client__applied_or_whole_snapshot_fetched(case: Doc) -> None:
    # Given a client holding the case's snapshot, from a service that sent its hash
    base = _spec("patches.json")["snapshots"]["base"]
    expected = case["expected"]
    service = FakeService(base)
    with Client(
        "http://flags.test", "k", transport=service.transport, stream=False, poll_interval=0.02,
        send_metrics=False,
    ) as client:  # fmt: skip
        assert client.wait_until_ready(5)
        # When the service answers the next poll with the case's patch; its full snapshot
        # is the expected document, or (for a patch to refuse) another version entirely
        whole = expected.get("snapshot") or {**base, "version": 99}
        service.patch = case["patch"]
        service.doc = whole
        wait_for(lambda: client.version == whole["version"])
        # Then a valid patch was applied (no full download), a bad one refused for it
        assert client.stats.patches_applied == (0 if "error" in expected else 1)
        assert client.stats.patches_refused == (1 if "error" in expected else 0)
        assert dump_snapshot(client._current.snapshot) == _canonical(whole)  # type: ignore[union-attr]
        for check in case.get("evaluations", []):
            evaluation = client.evaluate(check["flag"], check["context"])
            assert (evaluation.reason, evaluation.enabled) == (check["reason"], check["enabled"])


def _canonical(doc: Doc) -> Doc:
    doc = json.loads(json.dumps(doc))
    for flag in doc["flags"].values():
        flag.setdefault("key_result", None)
        flag.setdefault("flow_item", None)
    return doc
