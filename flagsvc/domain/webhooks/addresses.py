"""Where webhooks may not point: the SSRF guard's rules.

A webhook URL is chosen by an admin, but requests leave from inside the network the
service runs in: without a guard, ``http://169.254.169.254/`` (cloud metadata) or
``http://localhost:6379/`` would be reachable through it. Only ``http`` and ``https``
are allowed, and every address the host resolves to must be public, unless the operator
allows private ones (``FLAGSVC_WEBHOOK_ALLOW_PRIVATE=1``: receivers inside a private
network, and tests).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

SCHEMES = ("http", "https")


def url_problem(url: str) -> str | None:
    """Why ``url`` can never be a webhook, or None (addresses are checked when sending)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials (sign with the webhook's secret instead)"
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        return "has a bad port"
    return None


def address_problem(address: str, allow_private: bool) -> str | None:
    """Why a resolved address must not be sent to, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified or (ip.is_reserved and not ip.is_loopback):
        return f"{address} is not a unicast address"
    if allow_private:
        return None
    if ip.is_loopback or ip.is_private or ip.is_link_local or not ip.is_global:
        return (
            f"{address} is a private, loopback or link-local address "
            "(FLAGSVC_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
        )
    return None


def literal_address(host: str) -> str | None:
    """``host`` if it is an IP address written out (not a name), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None
