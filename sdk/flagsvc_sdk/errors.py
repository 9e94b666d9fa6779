"""Errors of the SDK: only misuse at construction time raises into product code.

Evaluation (``is_enabled``, ``evaluate``, ``all_flags``) and the network calls
(``enroll``, ``leave``, metrics, snapshot updates) never raise: they answer the caller's
default, return ``False`` or log. The tree::

    SdkError                 base of everything the SDK raises
    ├── ConfigurationError   a bad argument to Client(...): malformed url, empty key,
    │                        non-positive interval (also a ValueError)
    └── FetchError           a snapshot download failed or was rejected; raised and caught
        │                    inside the background updater, logged, never seen by callers
        └── PatchRefusedError  a patch answer did not apply to the snapshot held (a gap
                               in the versions, a contradiction): it is fetched whole
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "FetchError", "PatchRefusedError", "SdkError"]


class SdkError(Exception):
    """Base class so callers can catch every SDK failure with one clause."""


class ConfigurationError(SdkError, ValueError):
    """An argument to ``Client(...)`` is invalid; the message names it and says why."""


class FetchError(SdkError):
    """A snapshot could not be downloaded or was refused (bad status, bad JSON, bad shape).

    ``status`` is the service's HTTP status when it answered one; ``retry_after`` its
    ``Retry-After`` in seconds (a 503 from an instance at its stream limit, a 429),
    which the updater waits at least before trying again.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status

    @property
    def key_refused(self) -> bool:
        """The service refused the SDK key (401, 403): retrying soon cannot help."""
        return self.status in (401, 403)


class PatchRefusedError(FetchError):
    """A patch answer that does not apply to the snapshot held; the full snapshot is next."""
