"""An OpenFeature provider backed by a flagsvc :class:`~flagsvc_sdk.Client`.

Needs the extra: ``pip install flagsvc-sdk[openfeature]``. ::

    from openfeature import api
    from flagsvc_sdk.openfeature import FlagsvcProvider

    api.set_provider(FlagsvcProvider(client))  # returns at once; see "Status" below
    api.get_client().get_boolean_value("new-checkout", False, EvaluationContext("user-1"))

Context: ``targeting_key`` becomes the flagsvc context's ``"key"`` (an attribute named
``key`` is used when there is no targeting key); datetime attributes become ISO-8601
strings, which the ``before``/``after`` rule ops read.

Values: each type resolves through the client's typed getter of that type
(``get_string_details`` …): the value of the variation served, with its key as the
``variant``; the default where none is served (an error, or off without an off
variation) and, with ``TYPE_MISMATCH``, for a flag of another type.

Reasons are the client's, which are OpenFeature's (``STATIC``, ``TARGETING_MATCH``,
``SPLIT``, ``DISABLED``, ``DEFAULT``, ``CACHED``, ``ERROR``), and so are the error codes
(``FLAG_NOT_FOUND``, ``PROVIDER_NOT_READY``, ``TARGETING_KEY_MISSING``,
``INVALID_CONTEXT``, ``TYPE_MISMATCH``, ``PARSE_ERROR``, ``GENERAL``). A context without
a targeting key evaluates wherever the answer does not need one. ``flag_metadata``
holds the flag's ``stage``, ``key_result``, ``flow_item``, the ``matched_cohort`` and
the snapshot ``version``; it is read-only.

Events: ``PROVIDER_CONFIGURATION_CHANGED`` (with ``flags_changed``) whenever the client
installs a snapshot that changes any flag.

Status: the provider follows the client's :class:`~flagsvc_sdk.Status`, ``ready`` as
``PROVIDER_READY``, ``stale`` as ``PROVIDER_STALE`` (answering from a bootstrap or cache
file not yet confirmed, or the service unreachable), ``error`` as ``PROVIDER_ERROR`` (no
snapshot, answering defaults), ``fatal`` as ``PROVIDER_ERROR`` with ``PROVIDER_FATAL``
(the SDK key was refused; OpenFeature then answers defaults). ``initialize`` waits up to
``ready_timeout`` for the service's first answer: it returns when a snapshot is held
(then ``PROVIDER_STALE`` follows if the service has not confirmed it yet), raises
``ProviderNotReadyError`` when none is (status ``ERROR`` until the first snapshot, then
``PROVIDER_READY``) and ``ProviderFatalError`` when the key was refused. So
``api.set_provider_and_wait`` raises while the service is down and no bootstrap file is
configured; ``api.set_provider`` never does, which is why the quick start uses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any
from typing import TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.exception import ProviderFatalError
from openfeature.exception import ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.flag_evaluation import FlagValueType
from openfeature.flag_evaluation import Reason as OFReason
from openfeature.provider import AbstractProvider
from openfeature.provider import Metadata
from openfeature.provider import ProviderStatus

try:  # where OpenFeature records each provider's status (see _settle_later)
    from openfeature.provider._registry import ProviderRegistry
    from openfeature.provider._registry import provider_registry

    _registry: ProviderRegistry | None = provider_registry
except ImportError:  # pragma: no cover - another openfeature-sdk: settle after a pause
    _registry = None

from ._threads import BackgroundThread
from .evaluation import ErrorCode
from .evaluation import Evaluation
from .events import Change
from .events import Status
from .events import StatusChange
from .protocol import FlagsClient

__all__ = ["FlagsvcProvider"]

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]

ERROR_CODES: Mapping[ErrorCode, OFErrorCode] = {code: OFErrorCode(code.value) for code in ErrorCode}
"""flagsvc error code -> OpenFeature's (the same names)."""


class FlagsvcProvider(AbstractProvider):
    """Resolve OpenFeature flags with a flagsvc client (local evaluation, never raises).

    The client answers from the flag's compiled resolver (``flagsvc_sdk._checks``), one
    shared ``Evaluation`` per outcome, so the provider keeps the
    ``FlagResolutionDetails`` it built for each and returns the same object again: no
    allocation but the context (OpenFeature only reads it; treat it as read-only).

    :param client: the flagsvc client (or :class:`flagsvc_sdk.testing.InMemoryClient`).
    :param ready_timeout: how long ``initialize`` waits for a first snapshot.
    :param close_client: close ``client`` on ``shutdown`` (when the provider owns it).
    """

    def __init__(
        self, client: FlagsClient, *, ready_timeout: float = 5.0, close_client: bool = False
    ) -> None:
        super().__init__()
        self._client = client
        self._ready_timeout = ready_timeout
        self._close_client = close_client
        self._settled = threading.Event()  # OpenFeature has recorded initialize's outcome
        self._built: dict[int, tuple[Evaluation[Any], FlagResolutionDetails[Any]]] = {}
        client.add_change_listener(self._on_change)
        client.add_status_listener(self._on_status)

    def get_metadata(self) -> Metadata:
        """Name the provider in OpenFeature's events and logs (built once: asked per call)."""
        return _METADATA

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Wait for the service's first answer (see "Status" in the module docstring).

        :raise ProviderFatalError: if the service refused the SDK key.
        :raise ProviderNotReadyError: if neither the service nor a file gave a snapshot.
        """
        ready = self._client.wait_until_ready(self._ready_timeout)
        _settle_later(self)  # then the events follow the client's status
        if self._client.status is Status.FATAL:
            raise ProviderFatalError("flagsvc: the service refused the SDK key")
        if not ready:
            raise ProviderNotReadyError("flagsvc: no snapshot yet; answering defaults")

    def shutdown(self) -> None:
        """Stop listening to the client, and close it if the provider owns it."""
        self._client.remove_change_listener(self._on_change)
        self._client.remove_status_listener(self._on_status)
        if self._close_client:
            self._client.close()

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        """The boolean flag's value; ``default_value`` on any error."""
        context = _context(evaluation_context)
        evaluation = self._client.get_boolean_details(flag_key, context, default_value)
        built = self._built.get(id(evaluation))  # (_details, inline: a call per evaluation)
        if built is not None and built[0] is evaluation:
            return built[1]
        return self._details(flag_key, evaluation)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """The string flag's value; ``default_value`` on any error."""
        context = _context(evaluation_context)
        evaluation = self._client.get_string_details(flag_key, context, default_value)
        built = self._built.get(id(evaluation))  # (_details, inline: a call per evaluation)
        if built is not None and built[0] is evaluation:
            return built[1]
        return self._details(flag_key, evaluation)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """The integer flag's value; ``default_value`` on any error."""
        context = _context(evaluation_context)
        evaluation = self._client.get_integer_details(flag_key, context, default_value)
        built = self._built.get(id(evaluation))  # (_details, inline: a call per evaluation)
        if built is not None and built[0] is evaluation:
            return built[1]
        return self._details(flag_key, evaluation)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """The float flag's value; ``default_value`` on any error."""
        context = _context(evaluation_context)
        evaluation = self._client.get_float_details(flag_key, context, default_value)
        built = self._built.get(id(evaluation))  # (_details, inline: a call per evaluation)
        if built is not None and built[0] is evaluation:
            return built[1]
        return self._details(flag_key, evaluation)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        """The object flag's value (a JSON object or array); ``default_value`` on any error."""
        context = _context(evaluation_context)
        evaluation = self._client.get_object_details(flag_key, context, default_value)
        built = self._built.get(id(evaluation))  # (_details, inline: a call per evaluation)
        if built is not None and built[0] is evaluation:
            return built[1]
        return self._details(flag_key, evaluation)

    def _details(self, flag_key: str, evaluation: Evaluation[T]) -> FlagResolutionDetails[T]:
        """The OpenFeature answer of ``evaluation``, built once per shared answer (the
        resolvers look it up in ``_built`` themselves, and call this when it is not)."""
        details = _resolution(flag_key, evaluation)
        if evaluation.error_code is None:  # shared per outcome; errors name the flag
            if len(self._built) > _MAX_CACHED:
                self._built.clear()
            self._built[id(evaluation)] = (evaluation, details)  # holds it: the id stays unique
        return details

    def _on_change(self, change: Change) -> None:
        details = ProviderEventDetails(
            flags_changed=list(change.flags_changed), metadata={"version": change.version}
        )
        self.emit_provider_configuration_changed(details)

    def _on_status(self, change: StatusChange) -> None:
        if self._settled.is_set():  # before, initialize's outcome is still to be recorded
            self._emit_status(change.status, change.message)

    def _emit_status(self, status: Status, message: str | None) -> None:
        details = ProviderEventDetails(message=message)
        if status is Status.READY:
            self.emit_provider_ready(details)
        elif status is Status.STALE:
            self.emit_provider_stale(details)
        elif status is Status.ERROR:
            error = ProviderEventDetails(message=message, error_code=OFErrorCode.GENERAL)
            self.emit_provider_error(error)
        elif status is Status.FATAL:
            fatal = ProviderEventDetails(message=message, error_code=OFErrorCode.PROVIDER_FATAL)
            self.emit_provider_error(fatal)

    def _settle(self, recorded: ProviderStatus | None) -> None:
        """OpenFeature recorded ``recorded`` for initialize's outcome (``None``: unknown);
        from now on events follow the client, starting with where it is now."""
        self._settled.set()
        status = self._client.status
        if recorded is not _OF_STATUS.get(status):
            self._emit_status(status, None)


def _context(evaluation_context: EvaluationContext | None) -> dict[str, Any]:
    """Turn an OpenFeature context into a flagsvc context (``targeting_key`` -> ``key``)."""
    if evaluation_context is None:
        return {}
    context = dict(evaluation_context.attributes)
    for value in context.values():
        if isinstance(value, datetime):
            context = {
                k: v.isoformat() if isinstance(v, datetime) else v for k, v in context.items()
            }
            break
    targeting_key = evaluation_context.targeting_key
    if targeting_key:
        context["key"] = targeting_key
    return context


_METADATA = Metadata(name="flagsvc")
_OF_STATUS: Mapping[Status, ProviderStatus] = {
    Status.READY: ProviderStatus.READY,
    Status.STALE: ProviderStatus.STALE,
    Status.ERROR: ProviderStatus.ERROR,
    Status.FATAL: ProviderStatus.FATAL,
}
_SETTLE_WAIT = 5.0
_SETTLE_PAUSE = 0.2


def _settle_later(provider: FlagsvcProvider) -> None:
    """Settle ``provider`` once OpenFeature has recorded the outcome of its ``initialize``.

    OpenFeature records READY (or ERROR) itself right *after* ``initialize`` returns
    (or raises), so an event emitted from inside ``initialize`` would be overwritten:
    a provider that starts from a bootstrap file must say STALE after that, not before.
    The outcome is read from OpenFeature's provider registry; without it (used outside
    the registry, or another openfeature-sdk) the provider settles after a short pause.
    """

    def wait() -> None:
        if _registry is None:
            time.sleep(_SETTLE_PAUSE)
            provider._settle(None)
            return
        deadline = time.monotonic() + _SETTLE_WAIT
        recorded = _registry.get_provider_status(provider)
        while recorded is ProviderStatus.NOT_READY and time.monotonic() < deadline:
            time.sleep(0.01)
            recorded = _registry.get_provider_status(provider)
        provider._settle(recorded)

    BackgroundThread(wait, "flagsvc-openfeature").start()


_MAX_CACHED = 4096
_ERROR = OFReason.ERROR


def _resolution(flag_key: str, evaluation: Evaluation[T]) -> FlagResolutionDetails[T]:
    metadata = MappingProxyType(evaluation.flag_metadata)
    code = evaluation.error_code
    if code is None:
        reason = OFReason(evaluation.reason.value)
        return FlagResolutionDetails(
            evaluation.value, None, None, reason, evaluation.variation, metadata
        )
    return FlagResolutionDetails(
        evaluation.value, ERROR_CODES[code], _message(flag_key, code), _ERROR, None, metadata
    )


def _message(flag_key: str, code: ErrorCode) -> str:
    """The error message OpenFeature passes on (hooks, logs)."""
    if code is ErrorCode.FLAG_NOT_FOUND:
        return f"flag {flag_key} not found (unknown or retired here)"
    if code is ErrorCode.TYPE_MISMATCH:
        return f"flag {flag_key} is of another type than the one asked"
    return f"flag {flag_key}: {code.value}"
