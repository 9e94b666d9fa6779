"""Evaluation survives any input, checked where a crash cannot take the test run down.

Product code passes whatever a request carried: ``json.loads('"\\udcff"')`` is a valid
JSON string holding a lone surrogate, and mmh3 5.x ends the process with SIGSEGV when
it hashes one. So the evaluations run in a child process (:class:`Evaluator`), fed
generated flag keys, user keys, attribute values and context shapes; the test asserts
the child is still alive and answered every call the way the SDK promises (a bool, an
``Evaluation``, the caller's default on any error), and that ``is_enabled``,
``evaluate`` and the engine agree. A crash shows up as the child's exit code, and
hypothesis shrinks the input that caused it.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from .conftest import ExplodingMapping

SPEC = Path(__file__).resolve().parents[2] / "spec" / "evaluation.json"
SET_SHAPES = {
    "eu-rollout": {"cohorts": ["nl-users"], "rollout_percent": 50},
    "members-rollout": {"cohorts": ["beta"], "rollout_percent": 25},
    "plain-rollout": {"cohorts": [], "rollout_percent": 75},
}


def snapshot_doc() -> dict[str, Any]:
    """The spec's main snapshot (every stage and reason) plus flags of the inline shape."""
    doc: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))["snapshots"]["main"]
    for key, fields in SET_SHAPES.items():
        doc["flags"][key] = {
            "key": key,
            "salt": "s9",
            "stage": "general",
            "killed": False,
            "exclusions": [],
            "type": "boolean",
            "variations": {"on": True, "off": False},
            "on": "on",
            "off": "off",
            **fields,
        }
    return doc


# --- the child ----------------------------------------------------------------------


class DictSubclass(dict[str, object]):
    """Not ``type(context) is dict``: the inline path must hand it on."""


def build_context(shape: str, fields: Any) -> object:
    """The context of one generated shape (built in the child: a mapping proxy cannot
    be pickled)."""
    if shape == "proxy":
        return MappingProxyType(fields)
    if shape == "subclass":
        return DictSubclass(fields)
    if shape == "raising":
        return ExplodingMapping()
    return fields  # a dict, or any other value ("other")


def _serve(conn: Connection) -> None:
    """The child: one client on the snapshot; answer each (flag, context, default)."""
    import httpx
    from flagsvc_sdk import Client
    from flagsvc_sdk.engine import evaluate
    from flagsvc_sdk.engine import load_snapshot

    doc = snapshot_doc()
    body = json.dumps(doc).encode()
    client = Client(
        "http://flags.test",
        "k",
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body)),
        stream=False,
        poll_interval=3600,
        send_metrics=False,
    )
    assert client.wait_until_ready(10)
    snapshot = load_snapshot(doc)
    while True:
        flag_key, (shape, fields), default = conn.recv()
        context = build_context(shape, fields)
        try:
            enabled = client.is_enabled(flag_key, context, default)
            evaluation = client.evaluate(flag_key, context)
            with_default = client.evaluate(flag_key, context, "fallback")
            every = client.all_flags(context)
            engine = evaluate(snapshot, flag_key, context)
            conn.send(
                (
                    enabled,
                    (evaluation.enabled, str(evaluation.reason), evaluation.error_code),
                    (with_default.value, with_default.error_code),
                    sorted(every) if isinstance(every, dict) else None,
                    (engine.enabled, str(engine.reason), engine.error_code),
                )
            )
        except BaseException as exc:  # the contract is broken: report it
            conn.send(("raised", repr(exc)))


class Evaluator:
    """A child process running :func:`_serve`, restarted after it died."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self.conn, child = self._context.Pipe()
        self.process = self._context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def ask(self, flag_key: object, context: tuple[str, object], default: bool) -> Any:
        """The child's answers; fails the test if it died on them."""
        if not self.process.is_alive():
            self._start()
        self.conn.send((flag_key, context, default))
        if not self.conn.poll(30):
            self.process.kill()
            pytest.fail(f"the child hung on {context!r}")
        try:
            return self.conn.recv()
        except EOFError:
            self.process.join(5)
            code = self.process.exitcode
            pytest.fail(f"evaluation killed the process (exit code {code}) on {context!r}")

    def close(self) -> None:
        self.process.kill()
        self.process.join(5)


@pytest.fixture(scope="module")
def evaluator() -> Iterator[Evaluator]:
    child = Evaluator()
    yield child
    child.close()


# --- generated input ----------------------------------------------------------------

ANY_CHARACTER = st.one_of(
    st.characters(codec=None, exclude_categories=()),  # every code point, surrogates too
    st.characters(categories=["Cs"]),  # lone surrogates, often
    st.sampled_from("aZ09-_.@ \x00"),
)
TEXT = st.text(alphabet=ANY_CHARACTER, max_size=12)
SURROGATE_TEXT = st.builds(
    lambda before, surrogate, after: before + surrogate + after,
    TEXT,
    st.characters(categories=["Cs"]),
    TEXT,
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**5000), max_value=10**5000),  # past int -> str's digit limit
    st.floats(allow_nan=True),
    st.booleans(),
)
SCALARS = st.one_of(st.none(), TEXT, NUMBERS)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)
USER_KEYS = st.one_of(
    TEXT, SURROGATE_TEXT, NUMBERS, st.none(), st.lists(TEXT, max_size=2), st.just("user-1")
)
ATTRIBUTES = st.dictionaries(
    st.one_of(st.sampled_from(["country", "plan", "key", "signup"]), TEXT), VALUES, max_size=4
)


@st.composite
def contexts(draw: st.DrawFn) -> tuple[str, object]:
    """``(shape, fields)`` for :func:`build_context`."""
    shape = draw(st.sampled_from(["dict", "proxy", "subclass", "raising", "other"]))
    if shape == "other":
        return shape, draw(st.one_of(SCALARS, st.lists(VALUES, max_size=2)))
    fields = draw(ATTRIBUTES)
    if draw(st.integers(0, 3)):  # mostly with a key
        fields["key"] = draw(USER_KEYS)
    return shape, fields


FLAG_KEYS = st.one_of(
    st.sampled_from(sorted(snapshot_doc()["flags"])),
    st.sampled_from(["ga-flag", *SET_SHAPES]),  # the flags that hash, more often
    TEXT,
    st.integers(),
    st.none(),
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(flag_key=FLAG_KEYS, context=contexts(), default=st.booleans())
def test_evaluation__any_input_in_a_child__survives_and_answers(
    evaluator: Evaluator, flag_key: object, context: tuple[str, object], default: bool
) -> None:
    answer = evaluator.ask(flag_key, context, default)
    assert answer[0] != "raised", answer
    enabled, evaluation, with_default, every, engine = answer
    assert type(enabled) is bool
    assert evaluation == engine  # the SDK's paths and the engine agree
    on, _, error_code = evaluation
    assert enabled is (default if error_code is not None else on)
    value, default_error = with_default
    assert default_error == error_code
    if error_code is not None:
        assert value == "fallback"
    assert every is not None


@pytest.mark.parametrize(
    "user_key",
    [json.loads('"\\udcff"'), "user-\ud800", "\udfff\ud800", "müller\udcff"],
    ids=["lone low", "lone high", "reversed pair", "after non-ASCII"],
)
@pytest.mark.parametrize("flag_key", ["ga-flag", "eu-rollout", "members-rollout", "plain-rollout"])
def test_evaluation__lone_surrogate_key__default_with_invalid_context(
    evaluator: Evaluator, flag_key: str, user_key: str
) -> None:
    for default in (True, False):
        answer = evaluator.ask(flag_key, ("dict", {"key": user_key, "country": "US"}), default)
        enabled, evaluation, _, _, engine = answer
        assert enabled is default
        assert evaluation == engine == (False, "ERROR", "INVALID_CONTEXT")
