"""One signed HTTP attempt at a delivery, behind the SSRF guard.

The host is resolved here and every address it resolves to is checked
(``domain.webhooks.addresses``); the request then goes to the address that was checked,
with the original ``Host`` header and TLS server name, so a DNS answer that changes
between the check and the connection (DNS rebinding) cannot redirect it inside the
network. Redirects are not followed (a 3xx counts as a failure), the answer's body is
never read, and proxies from the environment are not used.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from flagsvc.domain.webhooks import addresses
from flagsvc.domain.webhooks import signing

USER_AGENT = "flagsvc-webhooks/1"
Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: the receiver's status code, how long it took, what failed."""

    status_code: int | None
    latency_ms: float
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx answer: the receiver has it."""
        return self.status_code is not None and 200 <= self.status_code < 300


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Sender:
    """Sends deliveries over one pooled HTTP client (thread-safe, like ``httpx.Client``)."""

    def __init__(
        self,
        timeout: float,
        allow_private: bool,
        resolver: Resolver = resolve,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.allow_private = allow_private
        self._resolve = resolver
        self._wall_clock = wall_clock
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)
        self.timeout = timeout

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def send(self, url: str, body: bytes, secret: str, headers: Mapping[str, str]) -> Outcome:
        """POST ``body`` to ``url``, signed with ``secret`` for this attempt."""
        started = time.perf_counter()
        try:
            target, extensions, host_header = self._pinned(url)
        except (OSError, ValueError) as refused:
            return Outcome(None, _since(started), f"refused: {refused}"[:500])
        stamp = int(self._wall_clock())
        sent = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": host_header,
            signing.SIGNATURE_HEADER: signing.header(secret, stamp, body),
            **headers,
        }
        try:
            with self._client.stream(
                "POST", target, content=body, headers=sent, extensions=extensions
            ) as answer:
                code = answer.status_code
        except httpx.TimeoutException:
            return Outcome(None, _since(started), f"timeout after {self.timeout:g} s")
        except httpx.HTTPError as failed:
            return Outcome(None, _since(started), f"{type(failed).__name__}: {failed}"[:500])
        error = None if 200 <= code < 300 else f"HTTP {code}"
        return Outcome(code, _since(started), error)

    def _pinned(self, url: str) -> tuple[str, dict[str, Any], str]:
        """The URL with its host replaced by a checked address, the TLS server name to
        use, and the ``Host`` header: the connection goes where the guard looked."""
        problem = addresses.url_problem(url)
        if problem is not None:
            raise ValueError(f"the URL {problem}")
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = self._resolve(host, port)
        if not found:
            raise ValueError(f"{host} resolves to no address")
        for address in found:
            problem = addresses.address_problem(address, self.allow_private)
            if problem is not None:
                raise ValueError(problem)
        chosen = found[0]
        shown = f"[{chosen}]" if ":" in chosen else chosen
        target = parts._replace(netloc=f"{shown}:{port}").geturl()
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        host_header = parts.netloc.rpartition("@")[2]
        return target, extensions, host_header


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
