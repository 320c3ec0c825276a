"""Browser tests: Playwright driving Debian's chromium (never a browser Playwright downloads)
against a real `mailroom serve` (tests/e2e/conftest.py). SQLite only: the UI speaks the same API
whatever the backend, and the API's own tests cover both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import unavailable
from tests.e2e.conftest import database_env, start_server  # noqa: F401

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).with_name("artifacts")


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# Package scope: Playwright's sync API keeps an event loop running in the main thread while it is
# open, so it must be closed before the other packages' tests (which call asyncio.run) start.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")  # fails under CI=true
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e .[dev])")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def only_server(page: Any, base_url: str) -> list[str]:
    """Limits the page's network to the server (http and ws): every other request is aborted
    and recorded."""
    blocked: list[str] = []
    allowed = (base_url, base_url.replace("http://", "ws://"))

    def route(r: Any) -> None:
        if r.request.url.startswith(allowed) or r.request.url.startswith(("data:", "blob:", "about:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return blocked


def watch_console(page: Any) -> list[str]:
    """Console errors and CSP violations of the page."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    return problems


AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = """async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""


def serious_a11y_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands (axe from web/'s
    node_modules, evaluated through the DevTools protocol: the page's CSP is untouched)."""
    if not AXE.exists():
        unavailable(f"{AXE} is missing (cd web && npm ci)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    return list(page.evaluate(SERIOUS))
