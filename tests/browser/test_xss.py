"""Hostile questions in Chromium: pushed through every entry point that stores text a
page shows, they show as text and no script runs, on the kit's pages (both transports,
under their CSP) and on a page that renders the way the original Genie page does
(``innerHTML`` of the server's ``<li>`` strings). Another site's page cannot push.

Entry points: ``GET /push`` (a script, the kit's page on Socket.IO, the original page's
unencoded ``fetch``), the ``/ws`` ``query`` frame (a client, the kit's page on /ws) and
``/ws/tts`` text (the stream player's status line). Socket.IO has no question event, and
scenes are shown by no page.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.browser.pagekit import WAIT_MS
from tests.servers import ThreadServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PAYLOADS = (
    '<img src=x onerror="window.__xss=1">',
    "<img src=x onerror=alert(1)>",
    "<script>window.__xss=2</script>",
    '"><svg onload="window.__xss=3">',
    "' onmouseover='window.__xss=4' x='",
    '<iframe srcdoc="<script>parent.__xss=5</script>"></iframe>',
    '</li><li id=x><img src=x onerror="window.__xss=6">',
)
MARKUP = "img, script, svg, iframe"
QUEUES = ("todo", "run", "done", "dead")
# Records what would mean an injection: dialogs are recorded by Playwright, CSP
# violations (markup that got in, stopped only by the policy) here.
TRAP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""
# Renders exactly as the original Genie page (src/static/queue.html) does: Socket.IO
# events, then the lists' <li> strings joined into innerHTML; the clock by innerHTML;
# questions sent unencoded. Served from the server's origin by page.route.
ORIGINAL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<script src="/static/vendor/socket.io.min.js"></script></head>
<body><div id="clock"></div>
<ul id="todo"></ul><ul id="run"></ul><ul id="done"></ul><ul id="dead"></ul>
<script>
  const socket = io();
  async function refresh(name) {
    const res = await fetch("/get_queue/" + name);
    const data = await res.json();
    document.getElementById(name).innerHTML = data[name + "_jobs"].join("");
  }
  socket.on("connect", () => ["todo", "run", "done", "dead"].forEach(refresh));
  socket.on("time_update", (data) => {
    document.getElementById("clock").innerHTML = data.date;
  });
  for (const name of ["todo", "run", "done", "dead"]) {
    socket.on(name + "_update", () => refresh(name));
  }
  window.ask = (question) => fetch("/push?question=" + question);
</script></body></html>"""


def questions(tag: str) -> list[str]:
    return [f"xss-{tag}{i} {payload}" for i, payload in enumerate(PAYLOADS)]


def listed(base: str) -> str:
    """Every <li> string of every queue, joined."""
    return "".join(
        "".join(httpx.get(f"{base}/get_queue/{name}", timeout=30).json()[f"{name}_jobs"])
        for name in QUEUES
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    # One trusted origin: other loopback origins are then another site (CSRF test).
    with ThreadServer(
        allowed_origins=["http://trusted.example"],
        rate_limit_queries=0,
        max_queued_per_client=0,
        ws_close_timeout=1,
        notification_sound="/static/sounds/gentle-gong.mp3",
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def pushed(server: ThreadServer) -> list[str]:
    """Hostile questions from outside any page: a script's GET /push, a /ws query."""
    asked = questions("push")
    for question in asked:
        assert httpx.get(f"{server.url}/push", params={"question": question}).status_code == 200
    by_ws = questions("ws")
    # max_queue=None: frames left unread must not stall the client's close handshake.
    with connect(f"{server.ws_url}/ws", open_timeout=10, max_queue=None) as ws:
        for question in by_ws:
            ws.send(json.dumps({"type": "query", "text": question}))
        # Stay connected until they are answered: a /ws client's jobs go with it.
        tags = [q.split(" ", 1)[0] for q in by_ws]
        deadline = time.monotonic() + WAIT_MS / 1000
        while not all(f"{tag} " in httpx.get(f"{server.url}/get_queue/done").text for tag in tags):
            assert time.monotonic() < deadline, "the /ws questions were not answered"
            time.sleep(0.1)
    return asked + by_ws


def open_page(chromium: Any) -> tuple[Any, Any, dict[str, list[str]]]:
    """A fresh context whose page records dialogs, errors and CSP violations."""
    context = chromium.new_context()
    context.add_init_script(TRAP)
    page = context.new_page()
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    return context, page, seen


def assert_shown_as_text(
    page: Any, items: str, texts: list[str], seen: dict[str, list[str]]
) -> None:
    """Each text is in exactly one list item, literally; nothing ran, nothing was injected."""
    from playwright.sync_api import expect

    for text in texts:
        tag = text.split(" ", 1)[0]
        item = page.locator(items).filter(has_text=f"{tag} ")
        expect(item).to_have_count(1, timeout=WAIT_MS)
        assert f"Q: {text}" in item.inner_text(), (text, item.inner_text())
    assert page.locator(items).locator(MARKUP).count() == 0
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("window.__csp") == []
    assert seen == {"dialogs": [], "errors": []}


@pytest.mark.parametrize("transport", ["ws", "socketio"])
def test_kit_page_shows_hostile_questions_as_text(
    chromium: Any, server: ThreadServer, pushed: list[str], transport: str
) -> None:
    from playwright.sync_api import expect

    context, page, seen = open_page(chromium)
    try:
        page.goto(f"{server.url}/genie?transport={transport}")
        expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
        typed = questions(f"page-{transport}")[:3]  # /ws query or same-origin /push
        for question in typed:
            page.locator("#question").fill(question)
            page.locator("#question").press("Enter")
            expect(page.locator("#push-status")).to_contain_text("queued", timeout=WAIT_MS)
        assert_shown_as_text(page, "#done-list li", pushed + typed, seen)
    finally:
        context.close()


def test_original_page_shows_hostile_questions_as_text(
    chromium: Any, server: ThreadServer, pushed: list[str]
) -> None:
    context, page, seen = open_page(chromium)
    try:
        page.route(
            f"{server.url}/original",
            lambda route: route.fulfill(body=ORIGINAL_PAGE, content_type="text/html"),
        )
        page.goto(f"{server.url}/original")
        page.wait_for_function("() => window.io && document.querySelector('#done li')")
        typed = questions("original")
        for question in typed:  # the original's own way: unencoded, same origin
            status = page.evaluate("async (q) => (await window.ask(q)).status", question)
            assert status == 200, question
        assert_shown_as_text(page, "#done li", pushed + typed, seen)
        # One <li> per job: no payload closed its item and opened another.
        assert page.locator("#done li").count() == listed(server.url).count("<li ")
        page.wait_for_function("() => /\\d/.test(document.getElementById('clock').textContent)")
    finally:
        context.close()


def test_stream_player_shows_hostile_text_as_text(chromium: Any, server: ThreadServer) -> None:
    from playwright.sync_api import expect

    context, page, seen = open_page(chromium)
    try:
        page.goto(f"{server.url}/stream-player")
        page.wait_for_function("() => window.__player.connected", timeout=WAIT_MS)
        page.evaluate(
            """() => new MutationObserver(() => (window.__status ||= []).push(
                 document.getElementById("status").textContent)).observe(
                 document.getElementById("status"), {childList: true})"""
        )
        text = PAYLOADS[0]  # the status line previews only the first 50 characters
        page.fill("#text", text)
        page.click("#speak")
        page.wait_for_function("() => window.__player.completeAt !== null", timeout=WAIT_MS)
        assert f"Generating speech for: {text}" in page.evaluate("window.__status")
        assert page.locator("#status").locator(MARKUP).count() == 0
        expect(page.locator("#status")).to_have_attribute("data-kind", "success")
        assert page.evaluate("window.__xss") is None and page.evaluate("window.__csp") == []
        assert seen == {"dialogs": [], "errors": []}
    finally:
        context.close()


def test_another_sites_page_cannot_push(
    chromium: Any, server: ThreadServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A page of another site (http://localhost:PORT is not the site of
    http://127.0.0.1:PORT) fires the legacy GETs the ways a page can: Chromium sends them
    with Sec-Fetch-Site: cross-site, and the server refuses each one with 403."""
    attack = """(base) => {
      const push = base + "/push?question=";
      const img = new Image();
      img.src = push + "csrf-img";
      document.body.append(img);
      fetch(push + "csrf-no-cors", {mode: "no-cors"}).catch(() => 0);
      fetch(push + "csrf-cors").catch(() => 0);  // sends Origin
      fetch(base + "/delete-snapshot/csrf-delete", {mode: "no-cors"}).catch(() => 0);
    }"""
    markers = ("csrf-img", "csrf-no-cors", "csrf-cors", "csrf-delete")
    context, page, _ = open_page(chromium)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        try:
            # Any document of that origin will do: the attack runs in it.
            page.goto(f"http://localhost:{server.port}/health")
            page.evaluate(attack, server.url)
            deadline = time.monotonic() + WAIT_MS / 1000
            while not all(m in caplog.text for m in markers) and time.monotonic() < deadline:
                page.wait_for_timeout(50)
        finally:
            context.close()
        answered = [r.getMessage() for r in caplog.records if "csrf-" in r.getMessage()]
    assert len(answered) == len(markers), answered
    assert all(line.endswith(" 403") for line in answered), answered
    assert "csrf-" not in listed(server.url)
