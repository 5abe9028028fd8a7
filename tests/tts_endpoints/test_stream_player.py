"""The ``/stream-player`` page in Debian's Chromium (Playwright): it plays while the MP3
still arrives (MSE), and falls back to the whole blob where MSE is missing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, _browser_missing
from tests.servers import ThreadServer

pytestmark = pytest.mark.browser
WAIT_MS = 20_000
# Long enough that frames keep arriving for a while after the first sentence plays.
TEXT = " ".join(
    f"Sentence number {i} of the stream player test, spoken while the rest arrives."
    for i in range(60)
)
NO_MSE = "delete window.MediaSource; delete window.ManagedMediaSource;"


def in_browser(server: ThreadServer, init_script: str | None = None) -> dict[str, Any]:
    """Drive the page from a thread of its own: Playwright's sync API keeps an event loop
    running on its thread, which would break the anyio tests that run after this module."""
    reason = _browser_missing()
    if reason is not None:
        pytest.skip(reason)

    def drive() -> dict[str, Any]:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                return run_page(browser, server, init_script)
            finally:
                browser.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(drive).result()


def run_page(browser: Any, server: ThreadServer, init_script: str | None = None) -> dict:
    context = browser.new_context()
    try:
        page = context.new_page()
        if init_script:
            page.add_init_script(init_script)
        page.goto(f"{server.url}/stream-player")
        page.wait_for_function("() => window.__player.connected", timeout=WAIT_MS)
        assert page.get_attribute("#lang option[selected]", "value") == "en"
        assert page.locator("#lang option").count() == 11
        page.fill("#text", TEXT)
        page.click("#speak")
        assert page.is_disabled("#speak")
        page.wait_for_function("() => window.__player.completeAt !== null", timeout=WAIT_MS)
        page.wait_for_function(
            "() => document.getElementById('player').currentTime > 0.5", timeout=WAIT_MS
        )
        result = page.evaluate("window.__player")
        result["status_kind"] = page.get_attribute("#status", "data-kind")
        result["enabled_after"] = not page.is_disabled("#speak")
        return result
    finally:
        context.close()


def test_plays_before_the_last_frame_arrives(server: ThreadServer) -> None:
    seen = in_browser(server)
    assert seen["mode"] == "mse" and not seen["errors"]
    assert seen["framesAtPlaying"] is not None
    assert seen["framesAtPlaying"] < seen["framesAtComplete"]
    assert seen["status_kind"] == "success" and seen["enabled_after"]


def test_whole_blob_fallback_without_mse(server: ThreadServer) -> None:
    seen = in_browser(server, NO_MSE)
    assert seen["mode"] == "blob" and not seen["errors"]
    assert seen["framesAtComplete"] > 1
