"""The asyncio client: the same local evaluation, and coroutines for what waits.

::

    async with AsyncClient("https://flags.example.com", sdk_key) as flags:
        await flags.wait_until_ready(5)
        if flags.is_enabled("new-checkout", {"key": user.id}):  # no await: local, lock-free
            ...
        await flags.enroll("early-adopters", {"key": user.id})

Evaluation (``is_enabled``, ``evaluate``, ``all_flags``) is the synchronous, lock-free
code of :class:`~flagsvc_sdk.Client` on the same store and engine: it never waits,
so there is nothing to await. What does wait is a coroutine that never blocks the
event loop: ``enroll`` and ``leave`` go through ``httpx.AsyncClient``,
``wait_until_ready`` sleeps on the loop, ``aclose`` stops the background work off it.
Keeping the snapshot current runs on the client's own threads, as in ``Client``, so a
loop that is busy elsewhere never delays a change, and the hot path has nothing to share
with the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from types import TracebackType
from typing import Self

from ._core import ClientCore
from ._transport import AsyncSdkApi
from .engine import Context

__all__ = ["AsyncClient"]

log = logging.getLogger("flagsvc_sdk")
_READY_POLL_SECONDS = 0.02


class AsyncClient(ClientCore):
    """Evaluate flags locally in asyncio code; the options are those of ``Client``."""

    _requests: tuple[int, AsyncSdkApi] | None = None

    async def enroll(self, cohort: str, context: Context) -> bool:
        """Enrol the context's user in opt-in ``cohort``; ``False`` (logged) on failure."""
        return await self._membership("/sdk/v1/enroll", cohort, context)

    async def leave(self, cohort: str, context: Context) -> bool:
        """Take the context's user out of opt-in ``cohort``; ``False`` (logged) on failure."""
        return await self._membership("/sdk/v1/leave", cohort, context)

    async def wait_until_ready(self, timeout: float) -> bool:
        """Wait, without blocking the loop, until the service answered (or failed to, with
        a file snapshot held, or refused the SDK key: then at once).

        :return: whether the client now answers from a snapshot rather than defaults.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        self._resume_after_fork()
        if not self._background.started:  # a uWSGI master: no thread, not even to wait
            return self._fetch_without_threads(timeout)  # (it serves no requests: see _fork)
        while not self._ready.is_set() and loop.time() < deadline:
            await asyncio.sleep(min(_READY_POLL_SECONDS, deadline - loop.time()))
        return self._current is not None

    async def aclose(self, timeout: float = 2.0) -> None:
        """Stop background work and flush metrics within ``timeout`` seconds, off the
        loop; evaluation keeps answering from the last snapshot."""
        await asyncio.to_thread(self._stop, timeout)
        requests, self._requests = self._requests, None
        if requests is not None and requests[0] == os.getpid():
            await requests[1].aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def close(self, timeout: float = 2.0) -> None:
        """``aclose`` for code outside the loop (shutdown hooks, ``atexit``): it blocks
        for up to ``timeout`` seconds, so never call it from a coroutine."""
        self._stop(timeout)

    async def _membership(self, path: str, cohort: str, context: Context) -> bool:
        try:
            body = self._membership_body(path, cohort, context)
            if body is None:
                return False
            return self._membership_done(await self._api().post(path, body))
        except Exception:  # the contract: never raise
            log.exception("flagsvc: %s failed", path)
            return False

    def _api(self) -> AsyncSdkApi:
        """This process's ``httpx.AsyncClient`` (a forked child never uses its parent's)."""
        requests = self._requests
        if requests is None or requests[0] != os.getpid():
            settings = self._settings
            api = AsyncSdkApi(settings.url, settings.sdk_key, settings.timeout, settings.transport)
            requests = self._requests = (os.getpid(), api)
        return requests[1]
