"""The page follows a server move: a page on native /ws whose FastAPI server is replaced,
on the same address, by a Flask server (what a proxy moving the browser looks like to
it) asks /api/client-config again, switches to Socket.IO and keeps working, its log
and the answers it already played kept.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import pagekit
from tests.browser.pagekit import SOUND, WAIT_MS
from tests.flask_app.launch import fastapi_server, flask_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# /ws retries back off to 5 s; the move is noticed after two failed opens.
MOVE_MS = 60_000


def ask_and_hear(page: Any, question: str, answer: str) -> None:
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    page.wait_for_function(
        """(answer) => window.__media.some((m) => m.kind === "ended"
                        && decodeURIComponent(m.url).includes(answer))""",
        arg=answer,
        timeout=WAIT_MS,
    )


@pytest.mark.parametrize("async_mode", ["threading", "gevent"])
def test_page_on_ws_moves_to_socketio_when_flask_takes_over(chromium: Any, async_mode: str) -> None:
    from playwright.sync_api import expect

    settings = {"notification_sound": SOUND}
    with fastapi_server(settings=settings) as fastapi:
        context = chromium.new_context(base_url=fastapi.url)
        context.add_init_script(pagekit.RECORDER)
        page = context.new_page()
        page.goto("/genie?transport=ws")
        state, transport = page.locator("#conn-state"), page.locator("#transport")
        expect(state).to_have_attribute("data-state", "open", timeout=WAIT_MS)
        expect(transport).to_have_attribute("data-transport", "ws")
        ask_and_hear(page, "what is 1 plus 1", "1 plus 1 is 2")

        fastapi.kill()
        expect(state).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        flask = flask_server(async_mode, settings=settings)
        flask.port = fastapi.port  # the same address: the browser cannot tell them apart
        with flask:
            expect(transport).to_have_attribute("data-transport", "socketio", timeout=MOVE_MS)
            expect(state).to_have_attribute("data-state", "open", timeout=WAIT_MS)
            log = page.locator("#log")
            expect(log).to_contain_text("server moved: now Socket.IO")
            expect(log).to_contain_text("asked: what is 1 plus 1")  # the page's log is kept
            decision = page.locator("#rollout-reason")
            expect(decision).to_have_attribute("data-reason", "ws_unavailable")

            ask_and_hear(page, "what is 9 minus 4", "9 minus 4 is 5")
            expect(page.locator("#done-count")).to_have_text("1", timeout=WAIT_MS)
            assert page.evaluate("genie.client.transport") == "socketio"
            spoken = [pagekit.spoken_text(url) for url in pagekit.played(page, "player")]
            assert "1 plus 1 is 2." in spoken and "9 minus 4 is 5." in spoken, spoken
            pagekit.screenshot(page, f"moved-to-flask-{async_mode}")
        context.close()
