"""Real HAProxy (rendered by ``deploy``) in front of a real Flask and a real FastAPI
server: the split follows the percentage, browsers stick to their server, and the
rollout moves (percent, kill switch, drain) take effect at run time on the same HAProxy
process. A SIGKILLed server's browsers land on the healthy one."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import websockets

from deploy.__main__ import main
from deploy.haproxy import COOKIE
from deploy.rollout import Target, apply
from tests.fastapi_app.helpers import WsClient
from tests.flask_app.launch import ServerProcess, fastapi_server, flask_server
from tests.fleet.nodes import eventually
from tests.haproxy import HaproxyProcess, running_haproxy

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
FRESH = 200  # cookie-less requests per split measurement
_SET_COOKIE = re.compile(rf"^{COOKIE}=([^;]+)")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with flask_server() as flask, fastapi_server() as fastapi:
        yield flask, fastapi


@pytest.fixture
def proxy(servers: tuple[ServerProcess, ServerProcess], tmp_path: Path) -> Iterator[HaproxyProcess]:
    flask, fastapi = servers
    with running_haproxy(flask=[flask.port], fastapi=[fastapi.port], percent=50,
                         tmp_path=tmp_path) as proxy:  # fmt: skip
        yield proxy


class Browser:
    """Requests through HAProxy; the cookie is sent only when the test says so."""

    def __init__(self, proxy: HaproxyProcess, http: httpx.AsyncClient) -> None:
        self.proxy, self.http = proxy, http

    async def land(self, cookie: str | None = None) -> tuple[int, str, str | None]:
        """(status, kind that answered by its /health body, server a new cookie names)."""
        headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
        response = await self.http.get(f"{self.proxy.url}/health", headers=headers)
        self.http.cookies.clear()  # every visit says exactly what the test chose
        if response.status_code != 200:
            return response.status_code, "?", None
        body = response.json()
        kind = "flask" if body.get("server") == "flask" else "fastapi" if "stage" in body else "?"
        set_cookies = [m.group(1) for h in response.headers.get_list("set-cookie")
                       if (m := _SET_COOKIE.match(h))]  # fmt: skip
        return 200, kind, (set_cookies[0] if set_cookies else None)

    async def visit(self, cookie: str | None = None) -> tuple[str, str | None]:
        """(kind that answered, the server a new cookie names); the answer must be 200."""
        status, kind, new_cookie = await self.land(cookie)
        assert status == 200, status
        return kind, new_cookie

    async def new_browsers(self, n: int) -> Counter[str]:
        """Kinds that ``n`` cookie-less visits landed on; each got a cookie for its server."""
        kinds: Counter[str] = Counter()
        for _ in range(n):
            kind, cookie = await self.visit()
            assert cookie is not None and cookie.startswith(f"{kind}-"), (kind, cookie)
            kinds[kind] += 1
        return kinds

    async def cookie_for(self, kind: str) -> str:
        """A cookie naming a server of ``kind`` (new visits until one lands there)."""
        for _ in range(50):
            landed, cookie = await self.visit()
            if landed == kind and cookie is not None:
                return cookie
        raise AssertionError(f"no new browser landed on {kind}")


@pytest.fixture
async def browser(proxy: HaproxyProcess) -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield Browser(proxy, http)


def assert_share(kinds: Counter[str], percent: float) -> None:
    """FastAPI's share within 4 binomial sigmas (roundrobin is exact; this is the contract)."""
    n, p = sum(kinds.values()), percent / 100
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(kinds["fastapi"] - n * p) <= 4 * sigma, (kinds, percent)


async def test_the_split_follows_the_percentage_set_at_run_time(
    proxy: HaproxyProcess, browser: Browser
) -> None:
    pid = proxy.pid
    assert_share(await browser.new_browsers(FRESH), 50)
    apply(proxy.api, Target(10))
    assert_share(await browser.new_browsers(FRESH), 10)
    apply(proxy.api, Target(0))
    assert await browser.new_browsers(20) == {"flask": 20}
    apply(proxy.api, Target(100))
    assert await browser.new_browsers(20) == {"fastapi": 20}
    assert proxy.pid == pid and proxy.proc is not None and proxy.proc.poll() is None


async def test_a_browser_that_sends_its_cookie_stays_on_its_server(browser: Browser) -> None:
    for kind in ("flask", "fastapi"):
        cookie = await browser.cookie_for(kind)
        # Same server every time, and no new cookie ("indirect": it already has one).
        assert [await browser.visit(cookie) for _ in range(10)] == [(kind, None)] * 10


async def test_socketio_long_polling_needs_the_cookie(proxy: HaproxyProcess) -> None:
    """An Engine.IO session lives on one server: with the cookie every poll finds it,
    without it roundrobin sends every other request to a server that never heard of it."""
    async with httpx.AsyncClient(timeout=10) as http:
        open_ = await http.get(f"{proxy.url}/socket.io/?EIO=4&transport=polling")
        cookie = {"Cookie": f"{COOKIE}={http.cookies[COOKIE]}"}
        http.cookies.clear()
        sid = json.loads(open_.text[1:])["sid"]
        url = f"{proxy.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
        assert (await http.post(url, content="40", headers=cookie)).text == "OK"
        packets = (await http.get(url, headers=cookie)).text.split("\x1e")
        assert any(packet.startswith("40") for packet in packets)  # connected
        sticky = [(await http.post(url, content='42["noop"]', headers=cookie)).status_code
                  for _ in range(6)]  # fmt: skip
        assert sticky == [200] * 6
        loose = [(await http.post(url, content='42["noop"]')).status_code for _ in range(6)]
        assert 400 in loose  # "Invalid session" from the other server


async def test_the_kill_switch_sends_new_browsers_to_flask_and_keeps_fastapi_ones(
    proxy: HaproxyProcess, browser: Browser
) -> None:
    on_fastapi = await browser.cookie_for("fastapi")
    commands, fleet = apply(proxy.api, Target.kill_switch())
    assert "set server genie/fastapi-1 weight 0" in commands
    assert [(s.name, s.state, s.weight) for s in fleet] == [
        ("flask-1", "UP", 1), ("fastapi-1", "UP", 0),
    ]  # fmt: skip
    assert await browser.new_browsers(20) == {"flask": 20}
    assert [await browser.visit(on_fastapi) for _ in range(5)] == [("fastapi", None)] * 5


async def test_drained_browsers_move_at_their_next_request_and_come_back_after(
    proxy: HaproxyProcess, browser: Browser
) -> None:
    on_flask = await browser.cookie_for("flask")
    _, fleet = apply(proxy.api, Target.drain("flask"))
    assert {s.name: s.state for s in fleet} == {"flask-1": "MAINT", "fastapi-1": "UP"}
    # The cookie names a server in maintenance: HAProxy ignores it and re-cookies.
    assert await browser.visit(on_flask) == ("fastapi", "fastapi-1")
    assert await browser.new_browsers(10) == {"fastapi": 10}
    _, fleet = apply(proxy.api, Target(50))  # out of maintenance: UP at once
    assert {s.name: s.state for s in fleet} == {"flask-1": "UP", "fastapi-1": "UP"}
    assert await browser.visit(on_flask) == ("flask", None)


async def test_drain_state_would_keep_cookied_browsers(
    proxy: HaproxyProcess, browser: Browser
) -> None:
    """Why the drain uses "maint": HAProxy's own "drain" still honours the cookie."""
    on_flask = await browser.cookie_for("flask")
    assert proxy.runtime("set server genie/flask-1 state drain").strip() == ""
    assert proxy.server_states()["flask-1"].state == "DRAIN"
    assert await browser.visit(on_flask) == ("flask", None)
    assert (await browser.new_browsers(6)) == {"fastapi": 6}


async def test_an_open_websocket_survives_a_drain(proxy: HaproxyProcess) -> None:
    """Open sockets are not cut by a drain; they move when they reconnect."""
    cookie = {"Cookie": f"{COOKIE}=fastapi-1"}
    client = await WsClient.connect(proxy.ws_url + "/ws", additional_headers=cookie)
    try:
        apply(proxy.api, Target.drain("fastapi"))
        await client.send(type="ping")
        assert (await client.next("pong"))["type"] == "pong"
    finally:
        await client.close()
    # Reconnecting with the same cookie now lands on Flask, which has no /ws (the page
    # falls back to Socket.IO there).
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(proxy.ws_url + "/ws", additional_headers=cookie)


async def test_a_killed_servers_browsers_land_on_the_healthy_one(
    servers: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> None:
    _, fastapi = servers
    with (
        flask_server() as doomed,
        running_haproxy(
            flask=[doomed.port], fastapi=[fastapi.port], percent=50, tmp_path=tmp_path
        ) as proxy,
    ):
        async with httpx.AsyncClient(timeout=10) as http:
            browser = Browser(proxy, http)
            on_flask = await browser.cookie_for("flask")
            doomed.kill()

            # A refused connection is redispatched; the health check then marks the
            # server DOWN (2 failed checks 1 s apart). Either way the browser lands on
            # FastAPI with a new cookie (polled: an error in between is allowed).
            async def moved() -> bool:
                return await browser.land(on_flask) == (200, "fastapi", "fastapi-1")

            await eventually(moved, wait=30, every=0.1)
            await anyio.to_thread.run_sync(
                lambda: proxy.wait_for(lambda s: s["flask-1"].state == "DOWN", "flask-1 DOWN")
            )
            assert await browser.visit(on_flask) == ("fastapi", "fastapi-1")
            assert await browser.new_browsers(10) == {"fastapi": 10}


def deploy_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip


async def test_the_rollout_command_line(proxy: HaproxyProcess) -> None:
    socket_ = str(proxy.admin_socket)
    status = deploy_cli("rollout", "--admin-socket", socket_, "--status")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].split() == ["server", "kind", "state", "weight", "sessions"]
    assert lines[1].split() == ["flask-1", "flask", "UP", "1", "0"]
    assert lines[2].split() == ["fastapi-1", "fastapi", "UP", "1", "0"]
    assert lines[3] == "new browsers to FastAPI: 50 %"

    missing = deploy_cli("rollout", "--admin-socket", socket_ + ".gone", "--status")
    assert missing.returncode == 1 and "no HAProxy admin socket" in missing.stderr


async def test_each_rollout_move_prints_what_it_did_and_the_result(
    proxy: HaproxyProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    socket_ = str(proxy.admin_socket)
    assert main(["rollout", "--admin-socket", socket_, "--fastapi-percent", "10"]) == 0
    out = capsys.readouterr().out
    assert "set server genie/flask-1 weight 9\n" in out
    assert out.rstrip().endswith("new browsers to FastAPI: 10 %")
    assert proxy.server_states()["flask-1"].weight == 9

    assert main(["rollout", "--admin-socket", socket_, "--drain", "flask"]) == 0
    out = capsys.readouterr().out
    assert "set server genie/flask-1 state maint\n" in out
    assert "flask-1    flask    MAINT" in out and "FastAPI: 100 %" in out

    assert main(["rollout", "--admin-socket", socket_, "--kill-switch"]) == 0
    out = capsys.readouterr().out
    assert "set server genie/flask-1 state ready\n" in out and "FastAPI: 0 %" in out
