"""The page through a server restart: the indicator shows the link is down, the client
reconnects by itself (Socket.IO: its own reconnection; /ws: backoff, then a new session
since the old one died with the process) and the page works again.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import pagekit
from tests.browser.pagekit import WAIT_MS

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.mark.parametrize("transport", ["ws", "socketio"])
def test_page_survives_a_server_restart(chromium: Any, transport: str) -> None:
    from playwright.sync_api import expect

    with pagekit.start_server("fastapi") as srv:
        context = chromium.new_context(base_url=srv.url)
        context.add_init_script(pagekit.RECORDER)
        page = context.new_page()
        page.goto(f"/genie?transport={transport}")
        state = page.locator("#conn-state")
        expect(state).to_have_attribute("data-state", "open", timeout=WAIT_MS)

        srv.kill()
        expect(state).to_have_attribute("data-state", "reconnecting", timeout=WAIT_MS)
        srv.start()  # same port, fresh process
        expect(state).to_have_attribute("data-state", "open", timeout=WAIT_MS)
        expect(page.locator("#transport")).to_have_attribute("data-transport", transport)

        page.locator("#question").fill("what is 9 minus 4")
        page.locator("#question").press("Enter")
        page.wait_for_function(
            """() => window.__media.some((m) => m.kind === "ended"
                     && decodeURIComponent(m.url).includes("9 minus 4 is 5"))""",
            timeout=WAIT_MS,
        )
        expect(page.locator("#done-count")).to_have_text("1")
        context.close()
