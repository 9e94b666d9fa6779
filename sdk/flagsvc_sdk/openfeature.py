"""An OpenFeature provider backed by a flagsvc :class:`~flagsvc_sdk.Client`.

Needs the extra: ``pip install flagsvc-sdk[openfeature]``. ::

    from openfeature import api
    from flagsvc_sdk.openfeature import FlagsvcProvider

    api.set_provider(FlagsvcProvider(client))  # returns at once; see "Status" below
    api.get_client().get_boolean_value("new-checkout", False, EvaluationContext("user-1"))

Context: ``targeting_key`` becomes the flagsvc context's ``"key"`` (an attribute named
``key`` is used when there is no targeting key); datetime attributes become ISO-8601
strings, which the ``before``/``after`` rule ops read.

Values: boolean resolution answers whether the flag is on. String, integer, float and
object resolution answer the flag's payload when it is on (a payload of the wrong type,
or no payload, gives the default with ``TYPE_MISMATCH``) and the default when it is off.
Integers are accepted for float resolution; booleans are never numbers.

=========================  =====================  ====================================
flagsvc reason             OpenFeature reason     note
=========================  =====================  ====================================
``COHORT``, ``ROLLOUT``    ``TARGETING_MATCH``    variant ``on``
``EXCLUDED``               ``TARGETING_MATCH``    user excluded by targeting; ``off``
``RELEASED``               ``STATIC``             on for everyone
``OFF``, ``KILLED``        ``DISABLED``           the default for non-boolean types
``NOT_TARGETED``           ``DEFAULT``            not in a cohort nor the rollout
``FLAG_NOT_FOUND``         ``ERROR``              ``FLAG_NOT_FOUND``
``ERROR``                  ``ERROR``              code mapped below
=========================  =====================  ====================================

Error codes: ``FLAG_NOT_FOUND``, ``PROVIDER_NOT_READY`` (no snapshot yet),
``TARGETING_KEY_MISSING`` (no targeting key nor ``key`` attribute), ``INVALID_CONTEXT``
(any other bad context), ``PARSE_ERROR``, ``TYPE_MISMATCH``, ``GENERAL``. The flag's
stage, matched cohort and snapshot version are in ``flag_metadata``.

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
from collections.abc import Callable
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

from .engine import Reason
from .evaluation import ErrorCode
from .evaluation import Evaluation
from .events import Change
from .events import Status
from .events import StatusChange
from .protocol import FlagsClient

__all__ = ["FlagsvcProvider"]

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]

REASONS: Mapping[Reason, OFReason] = {
    Reason.COHORT: OFReason.TARGETING_MATCH,
    Reason.ROLLOUT: OFReason.TARGETING_MATCH,
    Reason.EXCLUDED: OFReason.TARGETING_MATCH,
    Reason.RELEASED: OFReason.STATIC,
    Reason.OFF: OFReason.DISABLED,
    Reason.KILLED: OFReason.DISABLED,
    Reason.NOT_TARGETED: OFReason.DEFAULT,
    Reason.FLAG_NOT_FOUND: OFReason.ERROR,
    Reason.ERROR: OFReason.ERROR,
}
"""flagsvc reason -> OpenFeature reason (the table in the module docstring)."""

ERROR_CODES: Mapping[ErrorCode, OFErrorCode] = {
    ErrorCode.FLAG_NOT_FOUND: OFErrorCode.FLAG_NOT_FOUND,
    ErrorCode.PROVIDER_NOT_READY: OFErrorCode.PROVIDER_NOT_READY,
    ErrorCode.INVALID_CONTEXT: OFErrorCode.INVALID_CONTEXT,
    ErrorCode.PARSE_ERROR: OFErrorCode.PARSE_ERROR,
    ErrorCode.GENERAL: OFErrorCode.GENERAL,
}


class FlagsvcProvider(AbstractProvider):
    """Resolve OpenFeature flags with a flagsvc client (local evaluation, never raises).

    Boolean resolution is the hot path: ``Client.evaluate`` answers it with the flag's
    compiled resolver (``flagsvc_sdk._checks``), one shared ``Evaluation`` per outcome, so
    the provider keeps the ``FlagResolutionDetails`` it built for each and returns the
    same object again: no allocation but the context (OpenFeature only reads it; treat
    it as read-only).

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
        self._booleans: dict[int, tuple[Evaluation, FlagResolutionDetails[bool]]] = {}
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
        """Whether the flag is on; ``default_value`` on any error."""
        evaluation = self._client.evaluate(flag_key, _context(evaluation_context), None)
        if evaluation.error_code is not None:
            return _error(evaluation, default_value, evaluation_context)
        cached = self._booleans.get(id(evaluation))
        if cached is not None and cached[0] is evaluation:
            return cached[1]
        details = _details(evaluation.enabled, evaluation)
        if len(self._booleans) > _MAX_CACHED:
            self._booleans.clear()
        self._booleans[id(evaluation)] = (evaluation, details)  # holds it: the id stays unique
        return details

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        """The flag's string payload when on."""
        return self._payload(flag_key, default_value, evaluation_context, _is_str)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        """The flag's integer payload when on (``bool`` is not an integer here)."""
        return self._payload(flag_key, default_value, evaluation_context, _is_int)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        """The flag's number payload when on, as a float."""
        details = self._payload(flag_key, default_value, evaluation_context, _is_number)
        details.value = float(details.value)
        return details

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        """The flag's object (JSON object or array) payload when on."""
        return self._payload(flag_key, default_value, evaluation_context, _is_object)

    def _payload(
        self,
        flag_key: str,
        default: T,
        evaluation_context: EvaluationContext | None,
        fits: Callable[[object], bool],
    ) -> FlagResolutionDetails[T]:
        evaluation = self._client.evaluate(flag_key, _context(evaluation_context), None)
        if evaluation.error_code is not None:
            return _error(evaluation, default, evaluation_context)
        if not evaluation.enabled:
            return _details(default, evaluation)
        value = evaluation.value
        if not fits(value):
            message = f"flag {flag_key!r} payload is {type(value).__name__}, not the type asked"
            return FlagResolutionDetails(
                default, OFErrorCode.TYPE_MISMATCH, message, OFReason.ERROR
            )
        return _details(value, evaluation)  # type: ignore[arg-type]  # checked by fits()

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

    threading.Thread(target=wait, name="flagsvc-openfeature", daemon=True).start()


_MAX_CACHED = 4096
Described = tuple[OFReason, str, Mapping[str, bool | int | float | str]]
_described: dict[tuple[object, ...], Described] = {}
"""Reason, variant and metadata per distinct outcome: a flag gives only a handful, so they
are built once and shared (as ``InMemoryProvider`` shares its flags' metadata)."""


def _metadata(evaluation: Evaluation) -> dict[str, bool | int | float | str]:
    metadata: dict[str, bool | int | float | str] = {}
    if evaluation.stage is not None:
        metadata["stage"] = evaluation.stage.value
    if evaluation.matched_cohort is not None:
        metadata["matched_cohort"] = evaluation.matched_cohort
    if evaluation.version is not None:
        metadata["version"] = evaluation.version
    return metadata


def _describe(evaluation: Evaluation) -> Described:
    key = (
        evaluation.reason,
        evaluation.enabled,
        evaluation.stage,
        evaluation.matched_cohort,
        evaluation.version,
    )
    described = _described.get(key)
    if described is None:
        metadata = _metadata(evaluation)
        if len(_described) > _MAX_CACHED:  # versions move on; old outcomes are not asked again
            _described.clear()
        variant = "on" if evaluation.enabled else "off"
        described = _described[key] = (
            REASONS[evaluation.reason],
            variant,
            MappingProxyType(metadata),
        )
    return described


def _details(value: T, evaluation: Evaluation) -> FlagResolutionDetails[T]:
    reason, variant, metadata = _describe(evaluation)
    return FlagResolutionDetails(value, None, None, reason, variant, metadata)


def _error(
    evaluation: Evaluation, default: T, evaluation_context: EvaluationContext | None
) -> FlagResolutionDetails[T]:
    code = ERROR_CODES.get(evaluation.error_code or ErrorCode.GENERAL, OFErrorCode.GENERAL)
    if code is OFErrorCode.INVALID_CONTEXT and not _has_targeting_key(evaluation_context):
        code = OFErrorCode.TARGETING_KEY_MISSING
    message = f"flagsvc: {evaluation.reason.value} ({evaluation.error_code})"
    return FlagResolutionDetails(default, code, message, OFReason.ERROR)


def _has_targeting_key(evaluation_context: EvaluationContext | None) -> bool:
    if evaluation_context is None:
        return False
    return bool(evaluation_context.targeting_key or evaluation_context.attributes.get("key"))


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return type(value) is int or type(value) is float


def _is_object(value: object) -> bool:
    return isinstance(value, dict | list)
