"""The unmodified Genie page behind the login, in Chromium: with auth on, /genie sends the
browser to /login; a wrong password is refused in plain words; after logging in, the
page's Socket.IO transport connects on the session cookie alone, a question typed into
the page goes out over /push, and its spoken answer plays (URL read from the audio
element, the audio fetched with the browser's own cookie and decoded). No script can
read the cookie (HttpOnly).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from fastapi_app.auth.passwords import make_hash
from fastapi_app.auth.security import SESSION_COOKIE
from tests.audio import duration
from tests.browser import pagekit
from tests.browser.pagekit import SOUND, WAIT_MS
from tests.servers import ThreadServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PASSWORD = "correct horse battery staple"
QUESTION = "what is 6 times 7"
ANSWER = "6 times 7 is 42."


def wait_until(page: Any, done: Callable[[], bool], what: str) -> None:
    """Poll from Python: a string predicate in the page would need CSP's 'unsafe-eval'."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def spoken(page: Any) -> list[str | None]:
    return [pagekit.spoken_text(url) for url in pagekit.played(page, "player")]


def log_in(page: Any, password: str) -> None:
    page.locator("#user").fill("alice")
    page.locator("#password").fill(password)
    page.locator("#login button[type=submit]").click()


def test_log_in_then_the_page_asks_and_plays_the_answer(chromium: Any) -> None:
    from playwright.sync_api import expect

    entry = f"alice:{make_hash(PASSWORD, iterations=1000)}"
    settings = {"jwt_secret": "browser-login-secret-".ljust(64, "b"), "login_users": [entry]}
    with ThreadServer(stage="full", notification_sound=SOUND, **settings) as server:
        context = chromium.new_context(base_url=server.url)
        context.add_init_script(pagekit.RECORDER)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        try:
            page.goto("/genie?transport=socketio")
            expect(page).to_have_url(re.compile(r"/login\?next=%2Fgenie%3Ftransport%3Dsocketio$"))
            log_in(page, "not the password")
            expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
            assert context.cookies() == []

            log_in(page, PASSWORD)
            expect(page).to_have_url(f"{server.url}/genie?transport=socketio")
            state = page.locator("#conn-state")
            expect(state).to_have_attribute("data-state", "open", timeout=WAIT_MS)
            expect(page.locator("#transport")).to_have_attribute("data-transport", "socketio")
            assert SESSION_COOKIE not in page.evaluate("document.cookie")  # HttpOnly

            page.locator("#question").fill(QUESTION)
            page.locator("#question").press("Enter")
            expect(page.locator("#done-count")).to_have_text("1", timeout=WAIT_MS)
            wait_until(page, lambda: ANSWER in spoken(page), "the spoken answer")
            assert any("/push?question=" in url for url in requests), requests
            answer = pagekit.played(page, "player")[spoken(page).index(ANSWER)]
            audio = context.request.get(answer)  # with the browser's session cookie
            assert audio.status == 200 and audio.headers["content-type"] == "audio/mpeg"
            assert duration(audio.body()) > 0.5
            assert errors == []
        finally:
            context.close()
