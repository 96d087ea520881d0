"""Browser tests: Debian's Chromium driven by Playwright's async API, one browser per session.

Without ``/usr/bin/chromium`` (or Playwright) the tests skip with the reason, except under
``CI=true``, where they fail: ``make test`` installs Chromium with apt-get first.

Every page a test opens records console errors, page errors, dialogs and
``securitypolicyviolation`` events; the ``page`` fixture fails the test if any occurred.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from feedback_asgi.core.config import FeedbackConfig
from feedback_asgi.storage.base import FeedbackStoreProtocol
from feedback_asgi.storage.factory import build_store
from tests import services
from tests.browser import servers
from tests.services import IN_CI

CHROMIUM = Path(os.environ.get("FEEDBACK_ASGI_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync",
]
SCREENSHOTS = os.environ.get("FEEDBACK_ASGI_SCREENSHOTS")
"""A directory to save the widget screenshots in (``docs/img`` to refresh the README's)."""

# Records what a page should never produce, from the page itself (a CSP-proof init script).
RECORDER = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__problems.push("CSP: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium binary (skip, or fail under CI, without it or without Playwright)."""
    if services.WITHOUT_SERVICES:
        pytest.skip("make test-fast runs without the browser")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed: pip install -e '.[dev]'")
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    """One headless Chromium for the whole session."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium_browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=LAUNCH_ARGS, headless=True
        )
        try:
            yield chromium_browser
        finally:
            await chromium_browser.close()


@dataclass
class Problems:
    """What went wrong in a page: console errors, uncaught errors, dialogs, CSP violations."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    async def all(self, page: Any) -> list[str]:
        recorded: list[str] = []
        if not page.is_closed():
            recorded = await page.evaluate("window.__problems || []")
        return [*self.console, *self.errors, *self.dialogs, *recorded]


@dataclass
class BrowserPage:
    """A page in a fresh browser context (its own cookies), and what it recorded."""

    page: Any
    context: Any
    problems: Problems
    expected_console_errors: int = 0
    """Console errors the test causes on purpose (a refused request logs one)."""


@pytest_asyncio.fixture(loop_scope="session")
async def browser_page(browser: Any) -> AsyncIterator[BrowserPage]:
    """A fresh context and page; fails the test if the page logged a problem."""
    context = await browser.new_context(viewport={"width": 760, "height": 560})
    context.set_default_timeout(10_000)
    await context.add_init_script(RECORDER)
    page = await context.new_page()
    problems = Problems()
    page.on("console", lambda m: problems.console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.errors.append(str(e)))

    async def on_dialog(dialog: Any) -> None:
        problems.dialogs.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    wrapped = BrowserPage(page, context, problems)
    try:
        yield wrapped
        found = await problems.all(page)
        console_errors = len(problems.console)
        others = [p for p in found if p not in problems.console]
        assert others == [], others
        assert console_errors == wrapped.expected_console_errors, problems.console
    finally:
        await context.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, servers.ServedApp]]:
    """The example apps, each started on first use and stopped at the end of the session."""
    started: dict[str, servers.ServedApp] = {}

    class Lazy(dict[str, servers.ServedApp]):
        def __missing__(self, name: str) -> servers.ServedApp:
            app = servers.start(name, tmp_path_factory.mktemp(name))
            started[name] = self[name] = app
            return app

    try:
        yield Lazy()
    finally:
        for app in started.values():
            app.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stores() -> AsyncIterator[dict[str, FeedbackStoreProtocol]]:
    """Read-side stores on the apps' SQLite files, by database URL (closed at the end)."""
    opened: dict[str, FeedbackStoreProtocol] = {}
    try:
        yield opened
    finally:
        for store in opened.values():
            close = getattr(store, "close", None)
            if close is not None:
                await close()


def store_for(stores: dict[str, FeedbackStoreProtocol], app: servers.ServedApp) -> FeedbackStoreProtocol:
    """The store reading ``app``'s database (the same schema for the SQL and Django stores)."""
    if app.database_url not in stores:
        stores[app.database_url] = build_store(FeedbackConfig(database_url=app.database_url))
    return stores[app.database_url]


def expected_session(app: servers.ServedApp, cookies: list[dict[str, Any]]) -> str:
    """The session id the kit should record for a browser holding ``cookies``."""
    by_name = {cookie["name"]: cookie["value"] for cookie in cookies}
    if app.name == "fastapi":  # the kit's session_cookie: a digest of the cookie's value
        return hashlib.sha256(by_name["demo_session"].encode()).hexdigest()[:32]
    if app.name == "starlette":  # SessionMiddleware: signed base64 JSON holding session_id
        payload = by_name["session"].split(".")[0]
        data = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
        return str(data["session_id"])
    # Django: the integration keeps a digest of the session key
    return hashlib.sha256(by_name["sessionid"].encode()).hexdigest()[:32]
