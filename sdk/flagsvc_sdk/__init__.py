"""Python SDK for flagsvc: evaluate feature flags locally, kept current in the background.

::

    from flagsvc_sdk import Client

    with Client("https://flags.example.com", sdk_key, cache_path="flags.json") as flags:
        if flags.is_enabled("new-checkout", {"key": user.id, "country": user.country}):
            ...

Evaluation never raises. For asyncio code, :class:`AsyncClient` (the same evaluation;
coroutines for what waits on the network). The pure evaluation engine shared with the service is in
:mod:`flagsvc_sdk.engine`; an OpenFeature provider is in :mod:`flagsvc_sdk.openfeature`
(``pip install flagsvc-sdk[openfeature]``) and a network-free double for product tests in
:mod:`flagsvc_sdk.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from ._version import __version__ as __version__

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .client import Client
    from .engine import Context
    from .engine import Reason
    from .engine import Stage
    from .errors import ConfigurationError
    from .errors import FetchError
    from .errors import SdkError
    from .evaluation import ErrorCode
    from .evaluation import Evaluation
    from .evaluation import JsonObject
    from .events import Change
    from .events import ChangeListener
    from .events import Status
    from .events import StatusChange
    from .events import StatusListener
    from .protocol import FlagsClient
    from .stats import Stats

_MODULES = {
    "AsyncClient": "aio",
    "Change": "events",
    "ChangeListener": "events",
    "Client": "client",
    "ConfigurationError": "errors",
    "Context": "engine",
    "ErrorCode": "evaluation",
    "Evaluation": "evaluation",
    "FetchError": "errors",
    "FlagsClient": "protocol",
    "JsonObject": "evaluation",
    "Reason": "engine",
    "SdkError": "errors",
    "Stage": "engine",
    "Stats": "stats",
    "Status": "events",
    "StatusChange": "events",
    "StatusListener": "events",
}
"""Where each public name lives: imported on first use (PEP 562), so that importing
:mod:`flagsvc_sdk.engine` alone (the service does, in every worker) does not import the
clients and httpx (with rich and pygments, about 100 ms of a worker's start)."""


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


__all__ = [
    "AsyncClient",
    "Change",
    "ChangeListener",
    "Client",
    "ConfigurationError",
    "Context",
    "ErrorCode",
    "Evaluation",
    "FetchError",
    "FlagsClient",
    "JsonObject",
    "Reason",
    "SdkError",
    "Stage",
    "Stats",
    "Status",
    "StatusChange",
    "StatusListener",
]
