"""genie-client.js on native /ws: an answer that arrives while the page is disconnected
is replayed after it reconnects (``resume`` with its client id and last sequence number),
and a dropped socket reconnects by itself into the same session.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.audio import duration
from tests.browser import pagekit
from tests.browser.pagekit import SOUND, WAIT_MS
from tests.flask_app.launch import fastapi_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SLOW = "tests.fastapi_app.handlers:sleepy"  # "sleep N" answers after N seconds


def health(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/health", timeout=5).json()


def wait_health(base: str, page: Any, check: Any) -> None:
    """Poll /health until ``check(body)`` holds (the page's clock paces the polling)."""
    for _ in range(200):
        if check(health(base)):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"server never reached the state: {health(base)}")


def test_missed_answer_is_replayed_and_drops_reconnect(chromium: Any) -> None:
    from playwright.sync_api import expect

    settings = {"notification_sound": SOUND, "job_handler": SLOW}
    with fastapi_server(settings=settings) as srv:
        context = chromium.new_context(base_url=srv.url)
        context.add_init_script(pagekit.RECORDER)
        page = context.new_page()
        page.goto("/genie?transport=ws")
        state = page.locator("#conn-state")
        expect(state).to_have_attribute("data-state", "open", timeout=WAIT_MS)
        page.evaluate(
            """() => { window.__resumed = [];
                       genie.client.on("resumed", (r) => window.__resumed.push(r)); }"""
        )
        client_id = page.evaluate("genie.client.info.clientId")
        assert client_id

        page.locator("#question").fill("sleep 1.5")
        page.locator("#question").press("Enter")
        expect(page.locator("#push-status")).to_contain_text("queued", timeout=WAIT_MS)
        page.evaluate("genie.client.close()")
        expect(state).to_have_attribute("data-state", "closed")
        wait_health(srv.url, page, lambda h: h["connections"]["ws"] == 0)
        # The answer is spoken while nobody listens: it waits in the session's history.
        wait_health(srv.url, page, lambda h: h["jobs"]["done"] == 1)
        assert pagekit.played(page, "player") == [] or all(
            "slept" not in (pagekit.spoken_text(u) or "") for u in pagekit.played(page)
        )

        page.evaluate("genie.client.connect()")
        page.wait_for_function("() => window.__resumed.length === 1", timeout=WAIT_MS)
        resumed = page.evaluate("window.__resumed[0]")
        assert resumed["client_id"] == client_id
        assert resumed["replayed"] >= 1 and resumed["complete"] is True, resumed
        page.wait_for_function(
            """() => window.__media.some((m) => m.kind === "ended"
                     && decodeURIComponent(m.url).includes("I slept 1.5 seconds"))""",
            timeout=WAIT_MS,
        )
        answer = next(u for u in pagekit.played(page) if "slept" in u)
        assert duration(pagekit.fetch(answer).content) > 0.5
        expect(page.locator("#done-count")).to_have_text("1")

        # A socket that drops (not closed by the page) comes back into the same session.
        page.evaluate("genie.client._impl.ws.close(4001, 'test drop')")
        page.wait_for_function("() => window.__resumed.length === 2", timeout=WAIT_MS)
        expect(state).to_have_attribute("data-state", "open")
        again = page.evaluate("window.__resumed[1]")
        assert again["client_id"] == client_id and again["complete"] is True, again
        assert page.evaluate("genie.client.info.clientId") == client_id
        pagekit.screenshot(page, "fastapi-ws-resumed")
        context.close()


def test_lost_session_carries_on_as_a_new_one(chromium: Any) -> None:
    """With no resume window the old session is gone: the client takes its new one."""
    from playwright.sync_api import expect

    with fastapi_server(settings={"ws_resume_window": 0}) as srv:
        context = chromium.new_context(base_url=srv.url)
        context.add_init_script(pagekit.RECORDER)
        page = context.new_page()
        page.goto("/genie?transport=ws")
        expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
        page.evaluate(
            """() => { window.__resumed = [];
                       genie.client.on("resumed", (r) => window.__resumed.push(r)); }"""
        )
        # A first data frame, so the client knows this server numbers frames.
        page.locator("#question").fill("what is 1 + 1")
        page.locator("#question").press("Enter")
        expect(page.locator("#done-count")).to_have_text("1", timeout=WAIT_MS)
        old_id = page.evaluate("genie.client.info.clientId")

        page.evaluate("genie.client._impl.ws.close(4001, 'test drop')")
        page.wait_for_function("() => window.__resumed.length === 1", timeout=WAIT_MS)
        lost = page.evaluate("window.__resumed[0]")
        assert lost["failed"] == "resume_failed" and lost["client_id"] != old_id, lost
        assert page.evaluate("genie.client.info.clientId") == lost["client_id"]

        page.locator("#question").fill("what is 2 + 2")
        page.locator("#question").press("Enter")
        page.wait_for_function(
            """() => window.__media.some((m) => m.kind === "ended"
                     && decodeURIComponent(m.url).includes("2 plus 2 is 4"))""",
            timeout=WAIT_MS,
        )
        context.close()
