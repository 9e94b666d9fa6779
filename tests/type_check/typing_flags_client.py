"""Product code typed against ``FlagsClient``: the client and the test double both fit."""

from __future__ import annotations

from typing import Any
from typing import assert_type

from flagsvc_sdk import Change
from flagsvc_sdk import Client
from flagsvc_sdk import Evaluation
from flagsvc_sdk import FlagsClient
from flagsvc_sdk import JsonObject
from flagsvc_sdk import Stats
from flagsvc_sdk import Status
from flagsvc_sdk import StatusChange
from flagsvc_sdk.openfeature import FlagsvcProvider
from flagsvc_sdk.testing import InMemoryClient


def checkout_page(flags: FlagsClient, user_id: int, country: str) -> str:
    """What a product function looks like: it takes any FlagsClient."""
    context = {"key": user_id, "country": country}
    if flags.is_enabled("new-checkout", context):
        banner = flags.evaluate("banner-color", context, default="grey")
        assert_type(banner, Evaluation[Any])
        layout = flags.get_string_details("layout", context, "v1")
        assert_type(layout, Evaluation[str])
        assert_type(layout.value, str)
        assert_type(flags.get_integer("export-limit", context, 10), int)
        assert_type(flags.get_float("ratio", context, 0.5), float)
        assert_type(flags.get_object("config", context, {}), JsonObject)
        return f"new checkout, {banner.value}, {layout.value}"
    return "old checkout"


def typed_getter_needs_its_type(flags: FlagsClient) -> None:
    flags.get_integer("limit", {"key": "u"}, "ten")  # type: ignore[arg-type]


def on_change(change: Change) -> None:
    assert_type(change.flags_changed, tuple[str, ...])


def on_status(change: StatusChange) -> None:
    assert_type(change.status, Status)


def production() -> str:
    with Client("https://flags.example.com", "fss_production_x", on_status=on_status) as flags:
        flags.add_change_listener(on_change)
        assert_type(flags.status, Status)
        assert_type(flags.stats, Stats)
        assert_type(flags.version, int | None)
        return checkout_page(flags, 42, "NL")


def in_a_test() -> str:
    flags = InMemoryClient({"new-checkout": True})
    flags.add_status_listener(on_status)
    flags.set_status(Status.STALE)
    return checkout_page(flags, 42, "NL")


def provider_on_either(real: Client, double: InMemoryClient) -> list[FlagsvcProvider]:
    return [FlagsvcProvider(real), FlagsvcProvider(double)]


def not_a_flags_client() -> None:
    checkout_page(object(), 42, "NL")  # type: ignore[arg-type]


def evaluation_is_read_only(flags: FlagsClient) -> None:
    flags.evaluate("f", {"key": "u"}).value = 1  # type: ignore[misc]


async def in_an_asyncio_app(user_id: int) -> bool:
    from flagsvc_sdk import AsyncClient

    async with AsyncClient("https://flags.example.com", "fss_production_x") as flags:
        ready = await flags.wait_until_ready(5)
        assert_type(ready, bool)
        assert_type(flags.is_enabled("new-checkout", {"key": user_id}), bool)  # not awaited
        enrolled = await flags.enroll("early-adopters", {"key": user_id})
        flags.enroll("early-adopters", {"key": user_id})  # type: ignore[unused-coroutine]
        return enrolled
