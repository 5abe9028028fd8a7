"""A full queue in Chromium: the Genie page on Socket.IO asks while the server's queue is at
its cap; the question is refused at once, the page says so, and the user hears why (the
spoken busy message, decoded)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from queues.errors import QueueBusyError
from tests.audio import duration
from tests.browser import pagekit
from tests.browser.pagekit import SOUND, WAIT_MS
from tests.flask_app.launch import server_of
from tests.fleet.nodes import SLEEPY

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.mark.parametrize("kind", ["flask-gevent", "fastapi"])
def test_the_page_hears_that_the_server_is_busy(chromium: Any, kind: str) -> None:
    from playwright.sync_api import expect

    settings = {"notification_sound": SOUND, "job_handler": SLEEPY, "max_queued": 1}
    with server_of(kind, settings=settings) as server:
        context = chromium.new_context(base_url=server.url)
        context.add_init_script(pagekit.RECORDER)
        page = context.new_page()
        page.goto("/genie?transport=socketio")
        expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/push?question=sleep 5").is_success  # runs
            expect(page.locator("#run-count")).to_have_text("1", timeout=WAIT_MS)
            assert http.get("/push?question=what is 1 plus 1").is_success  # fills the queue

        page.locator("#question").fill("what is 2 plus 2")
        page.locator("#question").press("Enter")
        expect(page.locator("#push-status")).to_contain_text("not queued", timeout=WAIT_MS)
        expect(page.locator("#push-status")).to_contain_text("busy")
        page.wait_for_function(
            """(text) => window.__media.some((m) => m.kind === "play"
                        && decodeURIComponent(m.url).includes(text))""",
            arg=QueueBusyError.SPOKEN,
            timeout=WAIT_MS,
        )
        busy = next(
            u for u in pagekit.played(page) if pagekit.spoken_text(u) == QueueBusyError.SPOKEN
        )
        spoken = pagekit.fetch(f"{server.url}{busy}" if busy.startswith("/") else busy)
        assert spoken.status_code == 200 and duration(spoken.content) > 1.0
        expect(page.locator("#todo-count")).to_have_text("1")  # nothing was queued
        pagekit.screenshot(page, f"busy-{kind}")
        context.close()
