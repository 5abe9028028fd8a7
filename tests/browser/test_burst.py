"""The Genie page in Chromium keeps its lists right under a burst of 50 pushes, on both
transports of the FastAPI server: queue counts may be conflated on the way (only the
latest value of each matters), and the page refetches its lists on each count it gets,
so it must end with every job in the done list and the counts at their final values."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.browser.pagekit import WAIT_MS
from tests.browser.test_queue_page import open_page
from tests.flask_app.launch import fastapi_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

PUSHES = 50


@pytest.mark.parametrize("transport", ["socketio", "ws"])
def test_the_page_shows_every_job_after_a_burst_of_pushes(chromium: Any, transport: str) -> None:
    from playwright.sync_api import expect

    with fastapi_server(settings={"rate_limit_queries": 0}) as srv:
        context, page, errors = open_page(chromium, srv.url, transport)
        try:
            with httpx.Client(base_url=srv.url, timeout=30) as http, ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(
                    lambda n: http.get("/push", params={"question": f"what is {n} plus 1"}),
                    range(PUSHES),
                ))  # fmt: skip
            assert all(a.status_code == 200 for a in answers)
            expect(page.locator("#done-count")).to_have_text(str(PUSHES), timeout=WAIT_MS)
            expect(page.locator("#done-list li")).to_have_count(PUSHES, timeout=WAIT_MS)
            expect(page.locator("#todo-count")).to_have_text("0", timeout=WAIT_MS)
            expect(page.locator("#run-count")).to_have_text("0", timeout=WAIT_MS)
            assert errors == []
        finally:
            context.close()
