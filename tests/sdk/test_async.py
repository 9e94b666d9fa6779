"""``AsyncClient`` in asyncio code: the same answers, and nothing that blocks the loop.

The live tests run a small asyncio HTTP app (``asyncio.start_server``) that evaluates a
flag per request and enrols users, against a real service that is then frozen
(SIGSTOP: it accepts connections and answers nothing). While an enrolment waits on it,
the app must keep answering.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

from flagsvc_sdk import AsyncClient
from flagsvc_sdk import Client
from flagsvc_sdk import Status

from .conftest import LIVE_FLAG as FLAG
from .conftest import LIVE_USER as USER
from .conftest import FakeService
from .conftest import Live
from .conftest import eu_rollout_doc

NL = {"key": "user-1", "country": "NL"}


def run(coroutine: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coroutine())  # type: ignore[arg-type]


# --- offline: the same client, awaited ----------------------------------------------------


def test_async_client__evaluation__same_answers_as_client(service: FakeService) -> None:
    async def main() -> None:
        async with AsyncClient(
            "http://flags.test", "k", transport=service.transport, send_metrics=False
        ) as flags:
            assert await flags.wait_until_ready(5) is True
            assert flags.status is Status.READY
            with Client(
                "http://flags.test", "k", transport=service.transport, send_metrics=False
            ) as sync:
                assert sync.wait_until_ready(5)
                for i in range(200):
                    context = {"key": f"u{i}", "country": "NL" if i % 3 else "US"}
                    assert flags.is_enabled("new-checkout", context) == sync.is_enabled(
                        "new-checkout", context
                    )
                    assert flags.evaluate("new-checkout", context) == sync.evaluate(
                        "new-checkout", context
                    )

    run(main)


def test_async_client__enroll__posted_through_the_async_transport_then_refetched(
    service: FakeService,
) -> None:
    async def main() -> None:
        async with AsyncClient(
            "http://flags.test", "k", transport=service.transport, send_metrics=False
        ) as flags:
            await flags.wait_until_ready(5)
            fetches = flags.stats.fetches
            assert await flags.enroll("beta", {"key": 42}) is True
            assert await flags.leave("beta", {"key": 42}) is True
            assert service.posts[:2] == [
                ("/sdk/v1/enroll", {"cohort": "beta", "context": {"key": 42}}),
                ("/sdk/v1/leave", {"cohort": "beta", "context": {"key": 42}}),
            ]
            await asyncio.sleep(0.3)
            assert flags.stats.fetches > fetches  # the new membership is fetched at once
            service.post_status = 422
            assert await flags.enroll("staff", {"key": "u"}) is False
            assert await flags.enroll("", {"key": "u"}) is False  # no request at all

    run(main)


def test_async_client__change__seen_without_awaiting_anything(service: FakeService) -> None:
    async def main() -> None:
        async with AsyncClient(
            "http://flags.test", "k", transport=service.transport, poll_interval=0.05
        ) as flags:
            await flags.wait_until_ready(5)
            service.publish(eu_rollout_doc(version=2, killed=True))
            for _ in range(200):
                if flags.version == 2:
                    break
                await asyncio.sleep(0.01)
            assert flags.is_enabled("new-checkout", NL) is False

    run(main)


# --- a real asyncio app, a real service ------------------------------------------------------


class App:
    """An asyncio HTTP app: ``GET /flag`` evaluates, ``GET /enroll`` awaits an enrolment."""

    def __init__(self, flags: AsyncClient) -> None:
        self.flags = flags
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        while (await reader.readline()).strip():
            pass  # headers
        path = request.split()[1].decode()
        if path.startswith("/enroll"):
            answer: object = await self.flags.enroll("beta", {"key": "u-async"})
        else:
            answer = self.flags.is_enabled(FLAG, USER)
        body = json.dumps(answer).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def get(self, path: str) -> object:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: app\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
        writer.close()
        return json.loads(raw.split(b"\r\n\r\n", 1)[1])


def test_async_app__service_frozen__app_keeps_answering_while_an_enrolment_waits(
    running: Live,
) -> None:
    async def main() -> None:
        flags = AsyncClient(running.service.url, running.sdk_key, timeout=2.0, poll_interval=0.5)
        assert await flags.wait_until_ready(5)
        app = App(flags)
        await app.start()
        assert await app.get("/flag") is True
        with running.service.frozen():
            # When a request awaits an enrolment the service never answers
            enrolment = asyncio.create_task(app.get("/enroll"))
            await asyncio.sleep(0.1)
            # Then the app answers other requests meanwhile, at once
            started = time.monotonic()
            for _ in range(10):
                assert await app.get("/flag") is True
            assert time.monotonic() - started < 1.0
            assert not enrolment.done()
            assert await enrolment is False  # the request's 2 s timeout, then False
            # And closing does not block the loop either
            ticks = asyncio.create_task(_ticks(1.0))
            await flags.aclose()
            assert await ticks >= 20
        assert app.server is not None
        app.server.close()

    run(main)


def test_async_app__service_down_at_start__waiting_for_ready_leaves_the_loop_free(
    running: Live,
) -> None:
    async def main() -> None:
        running.service.kill()
        async with AsyncClient(running.service.url, running.sdk_key) as flags:
            ticks = asyncio.create_task(_ticks(1.0))
            assert await flags.wait_until_ready(1.0) is False
            assert await ticks >= 20  # the loop ran all along
            assert flags.is_enabled(FLAG, USER, default=True) is True

    run(main)


async def _ticks(seconds: float) -> int:
    """How many 10 ms sleeps the loop completes in ``seconds``."""
    count, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        count += 1
    return count
