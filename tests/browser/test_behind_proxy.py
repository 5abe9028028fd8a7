"""The Genie page in Chromium through a real HAProxy in front of a Flask and a FastAPI
server on one Redis: at 0 % a new browser lands on Flask (Socket.IO), at 100 % on
FastAPI (native ``/ws``, the transport stage at 100 % too), each kept there by the
``genie_server`` cookie; the split moves at run time with ``python -m deploy rollout``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import pagekit
from tests.browser.pagekit import SOUND, WAIT_MS
from tests.browser.test_server_move import ask_and_hear
from tests.flask_app.launch import ROOT
from tests.fleet.nodes import FLASK_THREADING, fleet
from tests.haproxy import HaproxyProcess, running_haproxy
from tests.redis_server import running_redis

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaproxyProcess]:
    with running_redis() as redis:
        roles = (FLASK_THREADING, {"rollout_ws_percent": 100})
        with fleet(redis.url, *roles, notification_sound=SOUND) as servers:
            flask, fastapi = servers
            with running_haproxy(
                flask=[flask.port], fastapi=[fastapi.port], percent=0,
                tmp_path=tmp_path_factory.mktemp("haproxy"),
            ) as proxy:  # fmt: skip
                yield proxy


def rollout(proxy: HaproxyProcess, *args: str) -> str:
    """``python -m deploy rollout`` against the running proxy, as an operator runs it."""
    command = [sys.executable, "-m", "deploy", "rollout", "--admin-socket", str(proxy.admin_socket)]
    done = subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def open_page(chromium: Any, proxy: HaproxyProcess) -> tuple[Any, Any]:
    from playwright.sync_api import expect

    context = chromium.new_context(base_url=proxy.url)
    context.add_init_script(pagekit.RECORDER)
    page = context.new_page()
    page.goto("/")  # both servers send a browser from / to the Genie page
    expect(page).to_have_url(f"{proxy.url}/genie")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    return context, page


def server_cookie(context: Any) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "genie_server")


@pytest.mark.parametrize(
    ("percent", "server", "transport"),
    [(0, "flask-1", "socketio"), (100, "fastapi-1", "ws")],
)
def test_the_page_through_the_proxy(
    chromium: Any, proxied: HaproxyProcess, percent: int, server: str, transport: str
) -> None:
    from playwright.sync_api import expect

    assert f"{percent:g} %" in rollout(proxied, "--fastapi-percent", str(percent))
    context, page = open_page(chromium, proxied)
    assert server_cookie(context) == server
    expect(page.locator("#transport")).to_have_attribute("data-transport", transport)
    number = uuid.uuid4().int % 1000
    ask_and_hear(page, f"what is {number} plus 1", f"{number} plus 1 is {number + 1}")
    # The page and every request after it stayed on its server.
    assert server_cookie(context) == server
    pagekit.screenshot(page, f"behind-proxy-{percent}")
    context.close()


def test_a_browser_keeps_its_server_until_drained(chromium: Any, proxied: HaproxyProcess) -> None:
    """Moving the split leaves an open page where it is; a drain moves it when it
    reconnects (here: a reload), and the questions it asked before stay answered."""
    from playwright.sync_api import expect

    rollout(proxied, "--fastapi-percent", "0")
    context, page = open_page(chromium, proxied)
    assert server_cookie(context) == "flask-1"
    ask_and_hear(page, "what is 20 plus 2", "20 plus 2 is 22")

    rollout(proxied, "--fastapi-percent", "100")
    page.reload()
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    assert server_cookie(context) == "flask-1"  # sticky: existing browsers stay

    out = rollout(proxied, "--drain", "flask")
    assert "MAINT" in out, out
    page.reload()
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    assert server_cookie(context) == "fastapi-1"
    expect(page.locator("#transport")).to_have_attribute("data-transport", "ws")
    # One queue behind both servers: the answer given on Flask is listed on FastAPI.
    expect(page.locator("#done-list")).to_contain_text("20 plus 2", timeout=WAIT_MS)
    ask_and_hear(page, "what is 30 plus 3", "30 plus 3 is 33")
    rollout(proxied, "--fastapi-percent", "0")  # leave the proxy as the next test expects
    context.close()
