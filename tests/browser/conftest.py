"""Fixtures for tests in a real browser: Debian's Chromium driven by Playwright.

Never a downloaded browser: Chromium is launched from ``/usr/bin/chromium``. Tests marked
``browser`` skip, saying why, when it or the ``playwright`` package is missing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SKIP_REASON = (
    "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium) and the "
    "playwright package (pip install playwright; never `playwright install`)"
)


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: {SKIP_REASON}"
    if importlib.util.find_spec("playwright") is None:
        return f"playwright is not installed: {SKIP_REASON}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _browser_missing()
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test module; each test opens its own contexts.

    Module scope, not session: sync Playwright keeps its own event loop running while it
    is open, and anyio tests in later modules cannot start a loop beside it.
    """
    reason = _browser_missing()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
