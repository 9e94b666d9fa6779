"""Browser fixtures: Debian's Chromium through Playwright against a real ``flagsvc serve``.

``service`` is an empty install (after ``flagsvc init``), ``demo`` one loaded with
``flagsvc demo``; ``people("engineer")`` opens a signed-in browser context for a role
(the first per role and site through the sign-in form, the next ones with its cookies).
One Chromium serves a run of consecutive browser tests, each person in a context of
their own (``tests/ui/conftest.py`` closes it when the next test needs no browser).
``Person.inspect(name)`` checks the page at 1280 and 390 px, light and dark (no overflow,
axe-core, console). Screenshots land in ``test-artifacts/screenshots/``: a failed test's
pages (``failed-<test>-<n>-<role>.png``) and each width and scheme ``inspect`` found a
problem at; every page shown with ``FLAGSVC_SCREENSHOTS=1`` (``make screenshots``).
Skipped with a reason when neither Debian browser (``CHROMIUM``) is installed; a failure
when ``FLAGSVC_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WORKER
from tests.conftest import service_missing
from tests.live import LiveService
from tests.live import initialise

HEADLESS_SHELL = Path("/usr/lib/chromium/chromium-headless-shell")
FULL_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM = HEADLESS_SHELL if HEADLESS_SHELL.exists() else FULL_CHROMIUM
"""The browser: Debian's ``chromium-headless-shell`` where it is installed (``.ci/run``
installs it), else Debian's ``chromium``. Both are Chromium from the same Debian source
(Blink, V8, the same axe-core answers); the headless shell is Chromium built for
headless use only, the build Playwright itself runs headless tests in. The full browser
in its headless mode starts every context and page as a desktop browser would, at about
four times the CPU (bench/README.md, "The suite's time", third pass)."""
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
EVERY_SCREENSHOT = os.environ.get("FLAGSVC_SCREENSHOTS") == "1"
"""Save every page a test shows (``make screenshots``). Otherwise only a failure's: the
page a failed test left, and each width and scheme ``inspect`` found a problem at. Full-
page PNGs are evidence for a human, not a check, and cost 0.3 s each (docs/ui.md)."""
WIDTHS = (1280, 390)  # a laptop and a phone
SCHEMES = ("light", "dark")
SERIOUS = frozenset({"serious", "critical"})
COLOUR_RULES = ("color-contrast", "link-in-text-block")
"""The axe-core rules whose answer can change with the colour scheme (they compare
colours). Dark mode restates colours and nothing else (``tests/ui/test_dark_mode.py``
holds ``ui.css`` to that), so every other rule reads the same document, visibility and
layout in both schemes and gives the same answer: ``inspect`` runs every rule in light
and these in dark, at both widths."""
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
CALL_REPORT = pytest.StashKey[pytest.TestReport]()
"""A test's own outcome (its call phase), kept for ``people`` to see while tearing down."""


@dataclass
class Site:
    """A running service and a token per role."""

    live: LiveService
    tokens: dict[str, str]
    signed_in: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per role, the browser state (its session cookie) of a sign-in through the form."""

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


SITE_ENV = {"FLAGSVC_SECRET_KEY": "browser-test-secret"}


def _initialised(path: Path) -> LiveService:
    """A service (not started) on a copy of an initialised database at ``path``.

    ``tests.live.initialise`` runs ``flagsvc init`` (an interpreter, every migration)
    once per process for these settings; each site gets a copy, as if init had run
    there, with the same first admin token.
    """
    live = LiveService(f"sqlite:///{path}", env=SITE_ENV)
    live.admin_token = initialise(live)
    return live


def _copy(template: Path, path: Path, token: str) -> LiveService:
    """A service (not started) on a copy of ``template``, whose first admin is ``token``."""
    with sqlite3.connect(template) as source, sqlite3.connect(path) as copy:
        source.backup(copy)  # WAL and all, unlike copying the file
    live = LiveService(f"sqlite:///{path}", env=SITE_ENV)
    live.admin_token = token
    return live


def _demo(path: Path, shared: Path) -> LiveService:
    """A service (not started) on a copy of the demo's database, built once per run.

    ``flagsvc demo`` is the slowest setup of all; under xdist the first worker to ask
    builds it in ``shared`` (the run's temporary folder) and the others copy it.
    """
    built, token_file = shared / "demo.db", shared / "demo.token"
    with (shared / "demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not token_file.exists():
            # the demo's quarter first: the audit's times never go back (like `make demo`)
            maker = LiveService(f"sqlite:///{built}", env=SITE_ENV)
            maker.cli("demo", timeout=180)
            token_file.write_text(maker.cli("init"))
    return _copy(built, path, token_file.read_text())


def new_site(path: Path, demo_from: Path | None = None) -> Site:
    """A started service on ``path`` with a token per role: an empty install, or a copy
    of the demo's quarter when ``demo_from`` names the folder it is built in."""
    live = (_demo(path, demo_from) if demo_from else _initialised(path)).start()
    tokens = {"admin": str(live.admin_token)}
    for name, role in (("erin", "engineer"), ("mia", "marketing"), ("vic", "viewer")):
        made = api_post(live.url, tokens["admin"], "/api/v1/tokens", {"name": name, "role": role})
        tokens[role] = made["token"]
    return Site(live, tokens)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A real service process on an empty database (after ``flagsvc init``)."""
    _require_chromium()
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
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if WORKER else base  # xdist: every worker's folder sits in one
    site = new_site(tmp_path_factory.mktemp("demo") / "flagsvc.db", demo_from=shared)
    yield site
    site.live.stop()


class SharedChromium:
    """Playwright and one Chromium, kept open across a run of consecutive browser tests.

    Starting Playwright's driver and Chromium costs seconds; the browser tests sit
    together (``tests/ui/test_browser*.py``), so one launch serves them all, each person
    in a new context. Not one per process: Playwright's event loop and Chromium's
    processes must not stay open beside the asyncio, gevent and fork tests that share
    the process, so ``close`` runs as soon as the next test needs no browser.
    """

    def __init__(self) -> None:
        self.manager: Any = None
        self.browser: Any = None

    def get(self) -> Any:
        """The running browser, launched if needed."""
        if self.browser is None:
            from playwright import sync_api

            self.manager = sync_api.sync_playwright()
            playwright = self.manager.start()
            self.browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
        return self.browser

    def close(self) -> None:
        """Close Chromium and stop Playwright (its event loop included)."""
        if self.browser is not None:
            browser, self.browser = self.browser, None
            browser.close()
        if self.manager is not None:
            manager, self.manager = self.manager, None
            manager.__exit__(None, None, None)


SHARED_CHROMIUM = SharedChromium()


@pytest.fixture(scope="module")
def chromium() -> Any:
    """Debian's Chromium, headless (Playwright's own browser downloads do not work here):
    ``CHROMIUM`` says which build."""
    _require_chromium()
    return SHARED_CHROMIUM.get()


def _require_chromium() -> None:
    """Skip (or fail, when CI demands it) without Chromium or Playwright."""
    if not CHROMIUM.exists():
        service_missing(
            "Chromium",
            f"neither {HEADLESS_SHELL} (apt-get install chromium-headless-shell) "
            f"nor {FULL_CHROMIUM} is installed",
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        service_missing("Playwright", "the playwright package is not installed (dev extra)")


class Person:
    """One person at one browser: their own cookies, page and console log."""

    def __init__(
        self,
        chromium: Any,
        service: Site,
        role: str,
        javascript: bool = True,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.service = service
        self.context = chromium.new_context(
            viewport={"width": 1360, "height": 900},
            java_script_enabled=javascript,
            storage_state=state,  # cookies of an earlier sign-in, or none
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.tab = self.context.new_page()
        self.landing = False  # kept cookies: show the landing page when first looked at
        self.loading: set[Any] = set()  # requests sent and not yet answered
        self.tab.on("request", lambda request: self.loading.add(request))
        self.tab.on("requestfinished", lambda request: self.loading.discard(request))
        self.tab.on("requestfailed", lambda request: self.loading.discard(request))
        self.problems: list[str] = []
        self.tab.on("console", self._console)
        self.tab.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.dialogs: list[str] = []  # confirm() questions asked, in order
        self.accept_dialogs = True  # False: answer "Cancel"
        self.tab.on("dialog", self._dialog)
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
        self.landing = False  # going elsewhere first: the landing page would go unseen
        response = self.tab.goto(self.service.url + path)
        self.settle()
        return response

    def settle(self) -> None:
        """Wait until the page has loaded and no request is still out.

        Playwright's ``networkidle`` always waits 500 ms of quiet, even when nothing is
        loading; our pages fetch nothing after their load event, so it is needed only
        while a request is still open.
        """
        self.page.wait_for_load_state("load")
        if self.loading:
            self.page.wait_for_load_state("networkidle")

    def sign_in(self) -> Person:
        """Sign in through the form, as a person does; lands where the role's work is."""
        self.go("/ui/sign-in")
        self.page.get_by_label("Token").fill(self.service.tokens[self.role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(rf".*/ui/{LANDING[self.role]}$"))
        return self

    def land(self) -> Person:
        """Signed in already (kept cookies): on the role's landing page, where ``sign_in``
        would have left them, as soon as ``page`` is looked at. A test whose first step
        is ``go`` elsewhere never loads it (that load was a fifth of a second each)."""
        self.landing = True
        return self

    @property
    def page(self) -> Any:
        """The person's tab (Playwright's ``Page``), on their landing page if ``land``
        left it to be opened."""
        if self.landing:
            self.go("/ui/")
            assert re.fullmatch(rf".*/ui/{LANDING[self.role]}", self.tab.url), self.tab.url
        return self.tab

    def inspect(self, name: str) -> None:
        """The page as it stands, at 1280 and 390 px, light and dark: no horizontal
        overflow at 390, no serious or critical axe-core violation (every rule in light,
        ``COLOUR_RULES`` in dark), no console error; screenshots of each
        (``<name>-<width>[-dark].png``)."""
        found: list[str] = []
        seen = 0  # problems found before this width and scheme
        for scheme in SCHEMES:
            self.page.emulate_media(color_scheme=scheme)
            for width in WIDTHS:
                self.page.set_viewport_size({"width": width, "height": 900})
                wide = self.page.evaluate("document.documentElement.scrollWidth")
                if wide > width:
                    culprits = self.page.evaluate(WIDEST)
                    found.append(f"{name} at {width} px ({scheme}): {wide} px wide: {culprits}")
                violations = self.axe_violations(None if scheme == "light" else COLOUR_RULES)
                found += [
                    f"{name} at {width} px ({scheme}): {v['id']} ({v['impact']}): "
                    f"{[n['target'] for n in v['nodes']][:3]} {v['help']}"
                    for v in violations
                    if v["impact"] in SERIOUS
                ]
                self.settle()
                if len(found) > seen or EVERY_SCREENSHOT:  # evidence of what failed
                    self._save(f"{name}-{width}{'' if scheme == 'light' else '-dark'}")
                seen = len(found)
        self.page.emulate_media(color_scheme="light")
        self.page.set_viewport_size({"width": 1360, "height": 900})
        assert found == [], "\n".join(found)
        assert self.problems == [], self.problems

    def axe_violations(self, rules: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it stands: of every rule ``Axe().run``
        runs, or of ``rules`` only.

        Its script is injected once per document: a new width or colour scheme keeps the
        document, and parsing axe-core again for each of the four checks costs more
        than the checks.
        """
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            from axe_playwright_python.sync_playwright import Axe

            self.page.evaluate(Axe().axe_script)
        options: dict[str, Any] = {"resultTypes": ["violations"]}
        if rules is not None:
            options["runOnly"] = {"type": "rule", "values": list(rules)}
        result = self.page.evaluate("options => axe.run(options)", options)
        return list(result["violations"])

    def shot(self, name: str) -> None:
        """A screenshot of the page for a human (``FLAGSVC_SCREENSHOTS=1``: see
        ``EVERY_SCREENSHOT``); without it, the wait that comes with one."""
        self.settle()
        if EVERY_SCREENSHOT:
            self._save(name)

    def _save(self, name: str) -> None:
        """Write the page as it stands (its callers have waited for it to settle)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def evidence(self, test: str, index: int) -> None:
        """A screenshot of the page as a failed test left it (never raises: the failure
        is the test's, whatever the page's state)."""
        plain = re.sub(r"[^\w.-]+", "-", test)  # a parametrised id may hold "/" or "["
        try:
            self.settle()
            self._save(f"failed-{plain}-{index}-{self.role}")
        except Exception as error:  # a closed page, a crashed renderer
            print(f"no screenshot of {test} ({self.role}): {error}")

    def env(self, key: str) -> Any:
        return self.page.locator(f"#env-{key}")

    def notice(self) -> str:
        return self.page.locator(".notice").first.inner_text()

    def close(self) -> None:
        self.context.close()


def sign_in_as(chromium: Any, site: Site, role: str, javascript: bool = True) -> Person:
    """A Person of ``role`` on ``site``, signed in and on their landing page.

    The first of each role on a site signs in through the form (the tests of signing in
    itself open people signed out and use the form); the others start from its kept
    cookies, which skips two page loads and a session write each. A kept session that no
    longer works (a test signed out with it, its token was revoked) is asked about over
    plain HTTP first and replaced by a new sign-in, so no test inherits another's
    sign-out.
    """
    kept = site.signed_in.get(role)
    if kept is not None and _session_alive(site, kept):
        return Person(chromium, site, role, javascript, state=kept).land()
    person = Person(chromium, site, role, javascript).sign_in()
    site.signed_in[role] = person.context.storage_state()
    return person


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Answer a redirect as it is (``urlopen`` raises it as an ``HTTPError``)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _session_alive(site: Site, state: dict[str, Any]) -> bool:
    """Whether the UI still takes these cookies: ``/ui/`` sends a signed-in person to
    their landing page and anyone else to the sign-in form."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in state["cookies"])
    request = urllib.request.Request(site.url + "/ui/", headers={"Cookie": cookies})
    try:
        urllib.request.build_opener(_NoRedirect).open(request, timeout=10)
    except urllib.error.HTTPError as answer:
        return answer.code == 303 and "/ui/sign-in" not in answer.headers.get("Location", "")
    return False


@pytest.fixture
def people(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``people("engineer")`` → a signed-in Person; every context is closed afterwards.

    On ``service`` unless ``site`` names another; ``service`` starts only when used.
    ``signed_in=False``: a visitor with no cookies, at a blank page."""
    opened: list[Person] = []

    def open_as(
        role: str, javascript: bool = True, signed_in: bool = True, site: Site | None = None
    ) -> Person:
        where = site or request.getfixturevalue("service")
        if signed_in:
            person = sign_in_as(chromium, where, role, javascript)
        else:
            person = Person(chromium, where, role, javascript)
        opened.append(person)
        return person

    yield open_as
    call = request.node.stash.get(CALL_REPORT, None)  # tests/ui/conftest.py keeps it
    for index, person in enumerate(opened):
        if call is not None and call.failed:
            person.evidence(request.node.name, index)
        person.close()
