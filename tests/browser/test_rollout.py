"""Staged rollout in a real browser: the page shows (and uses) what /api/client-config
decides at 0 %, 50 % and 100 %, a browser's cookie keeps it on its transport, the query
override and the kill switch work, and FastAPI counts each decision in /metrics.

Tolerance at 50 %: N fresh browser contexts each draw a bucket, so the number on ``ws``
is Binomial(N, 0.5). The test accepts the central range holding 99.9 % of that
distribution (computed exactly below; for N = 30: 6..24), so a correct rollout fails
it about once in a thousand runs, while 0 %, 100 % or a stuck bucket fail it always.
(wire/rollout.py's unit tests check the split itself far more tightly.) Those contexts
only read the decision: their sockets are refused, so a page closed mid-handshake
leaves nothing behind on the server; the other tests check the page connects on the
transport it was given.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.browser import pagekit
from tests.browser.pagekit import WAIT_MS, decision_counts, fastapi
from tests.flask_app.launch import flask_server
from wire import rollout

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

FRESH_CONTEXTS = 30
ALL_OR_NOTHING_CONTEXTS = 5
ALPHA = 0.001
COOKIE = rollout.DEFAULT_COOKIE


def binomial_range(n: int, p: float, alpha: float) -> tuple[int, int]:
    """Smallest central [lo, hi] with P(X < lo) + P(X > hi) <= alpha, X ~ Binomial(n, p)."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo, hi, tail = 0, n, 0.0
    while lo < hi:
        step = min(pmf[lo], pmf[hi])
        if tail + 2 * step > alpha:
            break
        tail += 2 * step
        lo, hi = lo + 1, hi - 1
    return lo, hi


def drawn(counts: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """The buckets drawn, from /metrics' decision counts.

    A quiet page on /ws, its socket refused twice, may ask again (to fall back to
    Socket.IO) before its context closes; that ask carries the cookie, so it is the only
    other decision allowed.
    """
    new = {key: n for key, n in counts.items() if key[1] == "new_bucket"}
    assert set(counts) - set(new) <= {("ws", "cookie")}, counts
    return new


def decision_in(page: Any, path: str = "/genie") -> tuple[str, str]:
    """Load the page; return the (transport, reason) it shows once it has decided."""
    from playwright.sync_api import expect

    page.goto(path)
    shown = page.locator("#rollout-transport")
    expect(shown).to_have_attribute("data-transport", rollout_pattern(), timeout=WAIT_MS)
    reason = page.locator("#rollout-reason").get_attribute("data-reason") or ""
    return shown.get_attribute("data-transport") or "", reason


def rollout_pattern() -> Any:
    import re

    return re.compile(r"^(ws|socketio)$")


def fresh_decisions(chromium: Any, base: str, count: int, path: str = "/genie") -> list[tuple]:
    """The decision shown in ``count`` fresh contexts (their sockets refused)."""
    out = []
    for _ in range(count):
        context = quiet_context(chromium, base)
        try:
            out.append(decision_in(context.new_page(), path))
        finally:
            context.close()
    return out


def quiet_context(chromium: Any, base: str) -> Any:
    """A fresh context whose pages get their decision but no socket (refused)."""
    context = chromium.new_context(base_url=base)
    context.route("**/socket.io/**", lambda route: route.abort())
    context.route_web_socket("**/ws", lambda ws: ws.close())
    return context


def wait_connected(page: Any, transport: str) -> None:
    """The page is connected over ``transport`` (Socket.IO: upgraded to its WebSocket).

    Waiting for the upgrade before closing the context sidesteps a server-side delay: a
    Socket.IO session abandoned while still long-polling holds the server's shutdown
    for 20 s (reported to the FastAPI side).
    """
    from playwright.sync_api import expect

    expect(page.locator("#conn-state")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    expect(page.locator("#transport")).to_have_attribute("data-transport", transport)
    if transport == "socketio":
        expect(page.locator("#transport")).to_contain_text("websocket", timeout=WAIT_MS)


def test_binomial_range_is_the_stated_one() -> None:
    assert binomial_range(FRESH_CONTEXTS, 0.5, ALPHA) == (6, 24)
    assert binomial_range(120, 0.5, ALPHA) == (42, 78)


@pytest.mark.parametrize(("percent", "transport"), [(0, "socketio"), (100, "ws")])
def test_all_or_nothing(chromium: Any, percent: int, transport: str) -> None:
    with fastapi(rollout_ws_percent=percent) as srv:
        seen = fresh_decisions(chromium, srv.url, ALL_OR_NOTHING_CONTEXTS)
        assert seen == [(transport, "new_bucket")] * ALL_OR_NOTHING_CONTEXTS
        assert drawn(decision_counts(srv.url)) == {
            (transport, "new_bucket"): ALL_OR_NOTHING_CONTEXTS
        }
        # The page does use the decided transport.
        context = chromium.new_context(base_url=srv.url)
        page = context.new_page()
        page.goto("/genie")
        wait_connected(page, transport)
        pagekit.screenshot(page, f"rollout-{percent}")
        context.close()


def test_half_splits_within_binomial_bound(chromium: Any) -> None:
    with fastapi(rollout_ws_percent=50) as srv:
        seen = fresh_decisions(chromium, srv.url, FRESH_CONTEXTS)
        metrics = decision_counts(srv.url)
    assert {reason for _, reason in seen} == {"new_bucket"}
    on_ws = sum(1 for transport, _ in seen if transport == "ws")
    lo, hi = binomial_range(FRESH_CONTEXTS, 0.5, ALPHA)
    assert lo <= on_ws <= hi, f"{on_ws} of {FRESH_CONTEXTS} on ws, outside {lo}..{hi}"
    assert drawn(metrics) == {
        ("ws", "new_bucket"): on_ws,
        ("socketio", "new_bucket"): FRESH_CONTEXTS - on_ws,
    }


def test_cookie_keeps_a_browser_on_its_transport(chromium: Any) -> None:
    with fastapi(rollout_ws_percent=50) as srv:
        for bucket, transport in (("0", "ws"), ("9999", "socketio"), (None, None)):
            context = quiet_context(chromium, srv.url)
            if bucket is not None:
                context.add_cookies([{"name": COOKIE, "value": bucket, "url": srv.url}])
            page = context.new_page()
            first, reason = decision_in(page)
            assert reason == ("new_bucket" if bucket is None else "cookie")
            if transport is not None:
                assert first == transport
            cookie = next(c for c in context.cookies() if c["name"] == COOKIE)
            assert cookie["httpOnly"] and cookie["expires"] > 0
            for _ in range(5):
                assert decision_in(page) == (first, "cookie")
            assert (
                next(c for c in context.cookies() if c["name"] == COOKIE)["value"]
                == (cookie["value"])
            )
            context.close()


def test_override_and_kill_switch(chromium: Any) -> None:
    with fastapi(rollout_ws_percent=0) as srv:
        context = chromium.new_context(base_url=srv.url)
        page = context.new_page()
        assert decision_in(page, "/genie?transport=ws") == ("ws", "override")
        wait_connected(page, "ws")
        # Not sticky: without the query the browser is back on its bucket's transport.
        assert decision_in(page, "/genie?transport=carrier-pigeon") == ("socketio", "cookie")
        wait_connected(page, "socketio")
        context.close()
    with fastapi(rollout_ws_percent=100, rollout_kill_switch=True) as srv:
        seen = fresh_decisions(chromium, srv.url, 3, "/genie?transport=ws")
        assert seen == [("socketio", "kill_switch")] * 3
        context = chromium.new_context(base_url=srv.url)
        page = context.new_page()
        page.goto("/genie")
        wait_connected(page, "socketio")
        context.close()


def test_flask_always_answers_socketio(chromium: Any) -> None:
    with flask_server(settings={"rollout_ws_percent": 100}) as srv:
        seen = fresh_decisions(chromium, srv.url, 3, "/genie?transport=ws")
    assert seen == [("socketio", "ws_unavailable")] * 3
