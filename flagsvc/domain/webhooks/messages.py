"""The bodies a webhook receives: flagsvc's JSON event, or a Slack-compatible message.

A body is built once, when the notification is written to the outbox, and stored as
the exact bytes every attempt sends: a retry is the same message (same event id, same
content) even if the flag changed since, and the signature covers those bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from flagsvc.domain.webhooks.events import EventType


class Format(StrEnum):
    """How a webhook wants its bodies."""

    JSON = "json"
    SLACK = "slack"


_SENTENCES: Mapping[str, str] = {
    EventType.EARLY_ACCESS_ENTERED: "{flag} entered early access in {environment}.",
    EventType.SAFE_TO_PROMISE: "{flag} is safe to promise (proven in {environment}).",
    EventType.READINESS_ITEM_DONE: "{flag}: readiness item {item} is done.",
    EventType.READY_TO_LAUNCH: "{flag} is ready to launch: every readiness item is done.",
    EventType.LAUNCH_SCHEDULED: "The launch of {flag} in {environment} is scheduled.",
    EventType.LAUNCHED: "{flag} launched in {environment} (general rollout).",
    EventType.LAUNCH_SKIPPED: "The scheduled launch of {flag} in {environment} was skipped.",
    EventType.KILLED: "{flag}: the kill switch was pulled in {environment}.",
    EventType.RELEASED: "{flag} is released in {environment}.",
    EventType.STALE: "{flag} looks stale: remove it from the code.",
}


def envelope(
    event_id: str, event: str, occurred_at: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON event: ``id`` is what receivers deduplicate on (delivery is at least once)."""
    return {"id": event_id, "type": event, "occurred_at": occurred_at, "data": dict(data)}


def sentence(event: str, data: Mapping[str, Any]) -> str:
    """One line a person reads in a chat channel."""
    template = _SENTENCES.get(event, "{flag}: " + event)
    flag = data.get("flag_name") or data.get("flag") or "a flag"
    line = template.format(
        flag=f"*{flag}*",
        environment=data.get("environment") or "every environment",
        item=data.get("item") or "",
    )
    if event == EventType.EARLY_ACCESS_ENTERED and data.get("safe_to_promise"):
        line += " It is safe to promise (on the promise board)."
    if data.get("reason"):
        line += f" Reason: {data['reason']}."
    return line


def slack_escaped(text: str) -> str:
    """``text`` with Slack's control characters escaped: a flag named ``<!channel>``
    must not ping a whole channel, nor ``<https://evil|docs>`` hide a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body(fmt: str, message: Mapping[str, Any]) -> bytes:
    """The bytes sent for ``message`` (an :func:`envelope`) in format ``fmt``."""
    if fmt == Format.SLACK:
        text = slack_escaped(sentence(message["type"], message["data"]))
        content: Mapping[str, Any] = {"text": text}  # the event id travels in a header
    else:
        content = message
    return json.dumps(content, separators=(",", ":"), sort_keys=True).encode()
