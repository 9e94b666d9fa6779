"""The "use this flag in code" snippets on a flag page: the Python SDK, OpenFeature, HTTP.

Each snippet is complete enough to paste: the service's own address, the flag's key, and
the call that fits the flag's value type (``is_enabled`` for a boolean flag, else the
SDK's typed getter with a default of that type, and the OpenFeature resolver of the type).
The SDK key is read from an environment variable, never written into code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flagsvc_sdk.engine.values import ValueType

SDK_KEY_VARIABLE = "FLAGSVC_SDK_KEY"
_BY_TYPE = {  # value type → (SDK getter, OpenFeature resolver, a default of the type as code)
    ValueType.BOOLEAN: ("is_enabled", "get_boolean_value", "False"),
    ValueType.STRING: ("get_string", "get_string_value", '""'),
    ValueType.INTEGER: ("get_integer", "get_integer_value", "0"),
    ValueType.FLOAT: ("get_float", "get_float_value", "0.0"),
    ValueType.OBJECT: ("get_object", "get_object_value", "{}"),
}


@dataclass(frozen=True, slots=True)
class Snippet:
    """One way to use the flag: a tab's label, an id for its copy button, and the code."""

    label: str
    slug: str
    code: str


def snippets(base_url: str, flag_key: str, value_type: str) -> list[Snippet]:
    """The snippets for ``flag_key`` (of ``value_type``) served from ``base_url``."""
    url = base_url.rstrip("/")
    getter, resolver, default = _BY_TYPE.get(ValueType(value_type), _BY_TYPE[ValueType.OBJECT])
    return [
        Snippet("Python SDK", "python", _python(url, flag_key, getter, default)),
        Snippet(
            "OpenFeature (Python)", "openfeature", _openfeature(url, flag_key, resolver, default)
        ),
        Snippet("Any language (HTTP)", "http", _http(url, flag_key)),
    ]


def _python(url: str, flag_key: str, getter: str, default: str) -> str:
    head = (
        "import os\n"
        "from flagsvc_sdk import Client\n\n"
        f'flags = Client("{url}", os.environ["{SDK_KEY_VARIABLE}"])  # one client per process\n'
        'context = {"key": user.id, "plan": user.plan}  # any attributes your cohorts use\n\n'
    )
    if getter == "is_enabled":
        return head + f'if flags.is_enabled("{flag_key}", context):\n    ...  # the new behaviour\n'
    return head + f'value = flags.{getter}("{flag_key}", context, {default})\n'


def _openfeature(url: str, flag_key: str, resolver: str, default: str) -> str:
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
