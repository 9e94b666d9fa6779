"""The "use this flag in code" snippets on a flag page: the Python SDK, OpenFeature, HTTP.

Each snippet is complete enough to paste: the service's own address, the flag's key, and
the call that fits the flag (``is_enabled`` for an on/off flag; for a flag with a
payload, ``evaluate`` and the OpenFeature resolver of the payload's type). The SDK key
is read from an environment variable, never written into code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SDK_KEY_VARIABLE = "FLAGSVC_SDK_KEY"
_OPENFEATURE_RESOLVERS = (  # payload type → (resolver, default shown in the snippet)
    (bool, "get_boolean_value", "False"),
    (str, "get_string_value", '""'),
    (int, "get_integer_value", "0"),
    (float, "get_float_value", "0.0"),
)


@dataclass(frozen=True, slots=True)
class Snippet:
    """One way to use the flag: a tab's label, an id for its copy button, and the code."""

    label: str
    slug: str
    code: str


def snippets(base_url: str, flag_key: str, payload: Any) -> list[Snippet]:
    """The snippets for ``flag_key`` served from ``base_url``."""
    url = base_url.rstrip("/")
    return [
        Snippet("Python SDK", "python", _python(url, flag_key, payload)),
        Snippet("OpenFeature (Python)", "openfeature", _openfeature(url, flag_key, payload)),
        Snippet("Any language (HTTP)", "http", _http(url, flag_key)),
    ]


def _python(url: str, flag_key: str, payload: Any) -> str:
    head = (
        "import os\n"
        "from flagsvc_sdk import Client\n\n"
        f'flags = Client("{url}", os.environ["{SDK_KEY_VARIABLE}"])  # one client per process\n'
        'context = {"key": user.id, "plan": user.plan}  # any attributes your cohorts use\n\n'
    )
    if payload is None:
        return head + f'if flags.is_enabled("{flag_key}", context):\n    ...  # the new behaviour\n'
    default = json.dumps(_empty_like(payload))
    return head + f'value = flags.evaluate("{flag_key}", context, default={default}).value\n'


def _openfeature(url: str, flag_key: str, payload: Any) -> str:
    resolver, default = _resolver(payload)
    return (
        "import os\n"
        "from openfeature import api\n"
        "from openfeature.evaluation_context import EvaluationContext\n"
        "from flagsvc_sdk import Client\n"
        "from flagsvc_sdk.openfeature import FlagsvcProvider\n\n"
        f'api.set_provider_and_wait(FlagsvcProvider(Client("{url}", '
        f'os.environ["{SDK_KEY_VARIABLE}"])))\n'
        "client = api.get_client()\n"
        'context = EvaluationContext(user.id, {"plan": user.plan})\n'
        f'value = client.{resolver}("{flag_key}", {default}, context)\n'
    )


def _http(url: str, flag_key: str) -> str:
    body = json.dumps({"context": {"key": "user-42", "plan": "beta"}, "flags": [flag_key]})
    return (
        f"curl -s {url}/sdk/v1/evaluate \\\n"
        f'  -H "Authorization: Bearer ${SDK_KEY_VARIABLE}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{body}'\n"
    )


def _resolver(payload: Any) -> tuple[str, str]:
    """The OpenFeature resolver for the flag's payload type (an on/off flag: boolean)."""
    if payload is None:
        return "get_boolean_value", "False"
    for kind, resolver, default in _OPENFEATURE_RESOLVERS:
        if type(payload) is kind:
            return resolver, default
    return "get_object_value", "{}"


def _empty_like(payload: Any) -> Any:
    """A harmless default of the payload's type, for the snippet."""
    return type(payload)() if isinstance(payload, str | int | float | bool | dict | list) else None
