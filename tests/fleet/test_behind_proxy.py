"""A mixed fleet behind a real HAProxy: Flask (threading and gevent) and FastAPI serve one
user base on one Redis, the proxy sending new browsers to either kind by percentage and
keeping each on its server with the ``genie_server`` cookie.

Browsers are emulated as the page behaves: load the page (the proxy picks a server and
sets the cookie), then connect with that cookie: Socket.IO over WebSocket or
long-polling, or ``/ws`` when ``/api/client-config`` says so (FastAPI only).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from queues.handlers import OfflineHandler
from tests.fastapi_app.helpers import WsClient
from tests.flask_app.sio import EventLog
from tests.fleet.nodes import (
    FLASK_GEVENT,
    FLASK_THREADING,
    SLEEPY,
    answer_to,
    eventually,
    fleet,
    health,
    said,
)
from tests.haproxy import HaproxyProcess, running_haproxy
from tests.redis_server import RedisServer, running_redis
from wire.urls import legacy_audio_url

pytestmark = pytest.mark.anyio

COOKIE = "genie_server"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


class Browser:
    """One browser: its cookie jar (so the proxy's cookie comes back) and its page."""

    def __init__(self, proxy: HaproxyProcess) -> None:
        self.proxy = proxy
        # aiohttp keeps no cookies from an IP address unless told to (127.0.0.1 here).
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.page: EventLog | None = None
        self.ws: WsClient | None = None

    @property
    def server(self) -> str:
        """The server the proxy keeps this browser on (``flask-2``, ``fastapi-1``...)."""
        return next(c.value for c in self.http.cookie_jar if c.key == COOKIE)

    async def get(self, path: str) -> aiohttp.ClientResponse:
        async with self.http.get(f"{self.proxy.url}{path}") as response:
            await response.read()
            return response

    async def open_socketio(self, transport: str, **options: Any) -> EventLog:
        assert (await self.get("/genie")).status == 200
        self.page = EventLog(http_session=self.http, **options)
        return await self.page.connect(self.proxy.url, transport)

    async def open_ws(self) -> bool:
        """Connect ``/ws`` if the server this browser landed on offers it."""
        async with self.http.get(f"{self.proxy.url}/api/client-config?transport=ws") as r:
            config = await r.json()
        if config["transport"] != "ws":
            return False
        ws_url = self.proxy.url.replace("http", "ws", 1) + "/ws"
        self.ws = await WsClient.connect(ws_url, additional_headers={"Cookie": self.cookie()})
        return True

    def cookie(self) -> str:
        return "; ".join(f"{c.key}={c.value}" for c in self.http.cookie_jar)

    async def close(self) -> None:
        if self.page is not None:
            with contextlib.suppress(Exception):
                await self.page.close()
        if self.ws is not None:
            await self.ws.conn.close()
        await self.http.close()


@contextlib.asynccontextmanager
async def browsers() -> AsyncIterator[list[Browser]]:
    opened: list[Browser] = []
    try:
        yield opened
    finally:
        for browser in opened:
            await browser.close()


def question(n: int) -> str:
    return f"what is {900 + n} plus 1"


async def test_a_mixed_fleet_serves_one_user_base(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    roles = (FLASK_THREADING, FLASK_GEVENT, {}, {})
    with fleet(redis_server.url, *roles) as servers:
        flask_ports = [s.port for s in servers[:2]]
        fastapi_ports = [s.port for s in servers[2:]]
        with running_haproxy(
            flask=flask_ports, fastapi=fastapi_ports, percent=50, tmp_path=tmp_path
        ) as proxy:
            async with browsers() as pages, browsers() as ws_browsers:
                for n in range(40):
                    pages.append(browser := Browser(proxy))
                    await browser.open_socketio("websocket" if n % 2 else "polling")
                while len(ws_browsers) < 20:
                    browser = Browser(proxy)
                    if await browser.open_ws():
                        ws_browsers.append(browser)
                    else:  # landed on Flask: the page would use Socket.IO there
                        await browser.close()
                on = Counter(b.server.split("-")[0] for b in pages)
                assert on["flask"] and on["fastapi"], on
                assert len({b.server for b in pages}) == 4  # every server has pages

                # 10 legacy askers (GET /push, on their own server) and 10 /ws askers.
                asked = {}
                for n, browser in enumerate(pages[:10]):
                    text = question(n)
                    assert (await browser.get(f"/push?question={text}")).status == 200
                    asked[text] = browser
                for n, browser in enumerate(ws_browsers[:10], start=10):
                    assert browser.ws is not None
                    await browser.ws.send(type="query", text=question(n))
                    asked[question(n)] = browser
                total = len(asked)

                legacy_answers = [legacy_audio_url(OfflineHandler().answer(question(n)))
                                  for n in range(10)]  # fmt: skip
                for browser in pages:
                    assert browser.page is not None
                    for url in legacy_answers:
                        await browser.page.wait_for(
                            "audio_update", where=lambda e, u=url: e["audioURL"] == u
                        )
                    await browser.page.wait_for_latest("done_update", {"value": total})
                for n, browser in enumerate(ws_browsers[:10], start=10):
                    assert browser.ws is not None
                    await answer_to(browser.ws, OfflineHandler().answer(question(n)))
                for browser in ws_browsers:
                    assert browser.ws is not None
                    await browser.ws.count("done_update", 1)
                    while browser.ws.of("done_update")[-1]["value"] < total:
                        await browser.ws.next("done_update", wait=30)

                await asyncio.sleep(0.5)  # room for a duplicate, had one been sent
                for browser in pages:
                    assert browser.page is not None
                    heard = Counter(e["audioURL"] for e in browser.page.of("audio_update"))
                    assert [heard[url] for url in legacy_answers] == [1] * 10, browser.server
                    done = [e["value"] for e in browser.page.of("done_update")]
                    assert done == sorted(set(done)) and done[-1] == total, done
                for browser in ws_browsers:
                    assert browser.ws is not None
                    # Its own answer once, no one else's (the rest are wait messages).
                    answers = {OfflineHandler().answer(t): b for t, b in asked.items()}
                    heard = [said(f) for f in browser.ws.of("audio_update")]
                    heard = [text for text in heard if text in answers]
                    assert heard == [t for t, b in answers.items() if b is browser], heard
                    done = [f["value"] for f in browser.ws.of("done_update")]
                    assert done == sorted(set(done)) and done[-1] == total, done

        # Every question answered once, and every server lists the same done jobs.
        async with httpx.AsyncClient(timeout=10) as http:
            listings = [(await http.get(f"{s.url}/get_queue/done")).json() for s in servers]
        assert all(listing == listings[0] for listing in listings)
        assert len(listings[0]["done_jobs"]) == total
        assert all(server.alive() for server in servers), [s.tail() for s in servers]


async def test_a_killed_server_loses_no_accepted_job(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGKILL the Flask server holding pages and a running job: its pages reconnect
    through the proxy to a healthy server, and every accepted job is answered."""
    roles = (FLASK_GEVENT, {})
    with fleet(redis_server.url, *roles, job_handler=SLEEPY, job_lease=2) as servers:
        victim, survivor = servers
        with running_haproxy(
            flask=[victim.port], fastapi=[survivor.port], percent=50, tmp_path=tmp_path
        ) as proxy:
            async with browsers() as pages, browsers() as elsewhere:
                # Pages on the victim, as many polling as WebSocket. (At 0 % the FastAPI
                # servers have weight 0 and take no new browser, even with Flask down.)
                while len(pages) < 4:
                    browser = Browser(proxy)
                    await browser.open_socketio(
                        "websocket" if len(pages) % 2 else "polling",
                        reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1,
                    )  # fmt: skip
                    (pages if browser.server == "flask-1" else elsewhere).append(browser)
                # One slow job for each node's consumer: the victim holds one when killed.
                asked = ["sleep 3", "sleep 3.5", "what is 5 plus 5", "what is 6 plus 6"]
                for text in asked:
                    assert (await pages[0].get(f"/push?question={text}")).status == 200

                async def victim_running() -> bool:
                    return (await health(victim))["queues"]["running"] > 0

                await eventually(victim_running)
                victim.kill()

                # Pages reconnect; the proxy sends them (and their next pushes) to FastAPI.
                async def all_moved() -> bool:
                    return all(
                        b.page is not None and b.page.sio.connected and
                        b.server == "fastapi-1" for b in pages
                    )  # fmt: skip

                await eventually(all_moved, wait=30)
                assert (await pages[1].get("/push?question=what is 7 plus 7")).status == 200
                asked.append("what is 7 plus 7")

                async def all_done() -> bool:
                    return (await health(survivor))["jobs"]["done"] == len(asked)

                await eventually(all_done, wait=40)
                async with httpx.AsyncClient(timeout=10) as http:
                    done = (await http.get(f"{survivor.url}/get_queue/done")).json()
                assert len(done["done_jobs"]) == len(asked)
                last = legacy_audio_url(OfflineHandler().answer("what is 7 plus 7"))
                for browser in pages:
                    assert browser.page is not None
                    await browser.page.wait_for(
                        "audio_update", where=lambda e: e["audioURL"] == last
                    )
            assert survivor.alive()
