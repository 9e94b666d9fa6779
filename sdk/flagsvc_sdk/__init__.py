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

from ._version import __version__ as __version__
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
