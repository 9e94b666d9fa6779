"""The SDK client: local evaluation on a snapshot kept current in the background.

Everything but the calls that wait on the network is shared with
:class:`~flagsvc_sdk.AsyncClient` (``_core.py``); here they block the calling thread
(under gevent, only the calling greenlet).
"""

from __future__ import annotations

import logging

from ._core import ClientCore
from .engine import Context

__all__ = ["Client"]

log = logging.getLogger("flagsvc_sdk")


class Client(ClientCore):
    """Evaluate flags of one environment locally, kept current by stream and polling.

    ``Client(url, sdk_key, *, bootstrap_path=None, cache_path=None, stream=True,
    poll_interval=30.0, timeout=5.0, send_metrics=True, metrics_interval=60.0,
    transport=None, on_change=None, on_status=None)``; the options are described on
    :class:`~flagsvc_sdk._core.ClientCore`. For asyncio code, :class:`AsyncClient`.
    """

    def enroll(self, cohort: str, context: Context) -> bool:
        """Enrol the context's user in opt-in ``cohort``; ``False`` (logged) on failure."""
        return self._membership("/sdk/v1/enroll", cohort, context)

    def leave(self, cohort: str, context: Context) -> bool:
        """Take the context's user out of opt-in ``cohort``; ``False`` (logged) on failure."""
        return self._membership("/sdk/v1/leave", cohort, context)

    def wait_until_ready(self, timeout: float) -> bool:
        """Wait until the service answered (or failed to, with a file snapshot held, or
        refused the SDK key: then at once).

        :return: whether the client now answers from a snapshot rather than defaults.
        """
        return self._wait_ready(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Stop background work and flush metrics, within ``timeout`` seconds; evaluation
        keeps answering from the last snapshot."""
        self._stop(timeout)

    def _membership(self, path: str, cohort: str, context: Context) -> bool:
        try:
            body = self._membership_body(path, cohort, context)
            if body is None:
                return False
            return self._membership_done(self._background.api.post(path, body))
        except Exception:  # the contract: never raise
            log.exception("flagsvc: %s failed", path)
            return False
