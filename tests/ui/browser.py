"""Browser fixtures: Debian's Chromium through Playwright against a real ``flagsvc serve``.

``service`` is an empty install (after ``flagsvc init``), ``demo`` one loaded with
``flagsvc demo``; ``people("engineer")`` opens a signed-in browser context for a role.
``Person.inspect(name)`` checks the page at 1280 and 390 px, light and dark (no overflow,
axe-core, console) and saves screenshots to ``test-artifacts/screenshots/``. Skipped
with a reason when ``/usr/bin/chromium`` is missing; a failure when
``FLAGSVC_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_missing
from tests.live import LiveService
from tests.live import start_service

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (1280, 390)  # a laptop and a phone
SCHEMES = ("light", "dark")
SERIOUS = frozenset({"serious", "critical"})
WIDEST = """() => {
  const edge = document.documentElement.clientWidth, found = [];
  for (const el of document.querySelectorAll("body *")) {
    const right = el.getBoundingClientRect().right;
    if (right > edge + 1 && !(el.parentElement && el.parentElement.closest(".table-wrap, pre"))) found.push(`${el.tagName}.${el.className} ${Math.round(right)}`);
  }
  return found.slice(0, 5);
}"""  # the elements that stick out (inside a scrolling table or code block is fine)
LANDING = {"admin": "flags", "engineer": "flags", "marketing": "readiness", "viewer": "okrs"}
TIMEOUT_MS = 15_000


@dataclass
class Site:
    """A running service and a token per role."""

    live: LiveService
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.live.url


def api_post(url: str, token: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST JSON to the running service's API with a bearer token."""
    request = urllib.request.Request(url + path, data=json.dumps(payload).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def new_site(path: Path, demo: bool = False) -> Site:
    env = {"FLAGSVC_SECRET_KEY": "browser-test-secret"}
    if demo:  # the demo's quarter first: the audit's times never go back (like `make demo`)
        live = LiveService(f"sqlite:///{path}", env=env)
        live.cli("demo", timeout=180)
        live.admin_token = live.cli("init")
        live.start()
    else:
        live = start_service(f"sqlite:///{path}", env=env)
    tokens = {"admin": str(live.admin_token)}
    for name, role in (("erin", "engineer"), ("mia", "marketing"), ("vic", "viewer")):
        made = api_post(live.url, tokens["admin"], "/api/v1/tokens", {"name": name, "role": role})
        tokens[role] = made["token"]
    return Site(live, tokens)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Site]:
    """A real service process on an empty database (after ``flagsvc init``)."""
    site = new_site(tmp_path_factory.mktemp("browser") / "flagsvc.db")
    yield site
    site.live.stop()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A real service holding ``flagsvc demo``'s quarter of history (for the timing pages).

    One per test process: building the quarter is the slowest setup here, and the tests
    that use it only read it (sign-ins, page views, filters), so they cannot disturb
    each other. A test that changes what it shows takes a site of its own."""
    _require_chromium()
    site = new_site(tmp_path_factory.mktemp("demo") / "flagsvc.db", demo=True)
    yield site
    site.live.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless (Playwright's own browser downloads do not work here).

    Per module: one per process would keep Playwright's event loop and Chromium's
    processes open beside the asyncio, gevent and fork tests that share the process.
    """
    _require_chromium()
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _require_chromium() -> None:
    """Skip (or fail, when CI demands it) without Chromium or Playwright."""
    if not CHROMIUM.exists():
        service_missing("Chromium", f"{CHROMIUM} is not installed")
    try:
        import playwright  # noqa: F401
    except ImportError:
        service_missing("Playwright", "the playwright package is not installed (dev extra)")


class Person:
    """One person at one browser: their own cookies, page and console log."""

    def __init__(self, chromium: Any, service: Site, role: str, javascript: bool = True) -> None:
        self.service = service
        self.context = chromium.new_context(
            viewport={"width": 1360, "height": 900}, java_script_enabled=javascript
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.dialogs: list[str] = []  # confirm() questions asked, in order
        self.accept_dialogs = True  # False: answer "Cancel"
        self.page.on("dialog", self._dialog)
        self.role = role

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        if self.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    def _console(self, message: Any) -> None:
        if message.type == "error" and "status of 4" not in message.text:
            self.problems.append(f"console: {message.text}")

    def go(self, path: str) -> Any:
        response = self.page.goto(self.service.url + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def sign_in(self) -> Person:
        self.go("/ui/sign-in")
        self.page.get_by_label("Token").fill(self.service.tokens[self.role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(rf".*/ui/{LANDING[self.role]}$"))
        return self

    def inspect(self, name: str) -> None:
        """The page as it stands, at 1280 and 390 px, light and dark: no horizontal
        overflow at 390, no serious or critical axe-core violation, no console error;
        screenshots of each (``<name>-<width>[-dark].png``)."""
        from axe_playwright_python.sync_playwright import Axe

        found = []
        for scheme in SCHEMES:
            self.page.emulate_media(color_scheme=scheme)
            for width in WIDTHS:
                self.page.set_viewport_size({"width": width, "height": 900})
                wide = self.page.evaluate("document.documentElement.scrollWidth")
                if wide > width:
                    culprits = self.page.evaluate(WIDEST)
                    found.append(f"{name} at {width} px ({scheme}): {wide} px wide: {culprits}")
                violations = Axe().run(self.page).response["violations"]
                found += [
                    f"{name} at {width} px ({scheme}): {v['id']} ({v['impact']}): "
                    f"{[n['target'] for n in v['nodes']][:3]} {v['help']}"
                    for v in violations
                    if v["impact"] in SERIOUS
                ]
                suffix = "" if scheme == "light" else "-dark"
                self.shot(f"{name}-{width}{suffix}")
        self.page.emulate_media(color_scheme="light")
        self.page.set_viewport_size({"width": 1360, "height": 900})
        assert found == [], "\n".join(found)
        assert self.problems == [], self.problems

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_load_state("networkidle")
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def env(self, key: str) -> Any:
        return self.page.locator(f"#env-{key}")

    def notice(self) -> str:
        return self.page.locator(".notice").first.inner_text()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(chromium: Any, service: Site) -> Iterator[Any]:
    """``people("engineer")`` → a signed-in Person; every context is closed afterwards."""
    opened: list[Person] = []

    def open_as(
        role: str, javascript: bool = True, signed_in: bool = True, site: Site | None = None
    ) -> Person:
        person = Person(chromium, site or service, role, javascript)
        opened.append(person)
        return person.sign_in() if signed_in else person

    yield open_as
    for person in opened:
        person.close()
