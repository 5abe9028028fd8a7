"""Connection floods, slow clients and synthesis caps, over real sockets.

Clients come from several loopback addresses (127.0.0.x are all loopback on Linux) so
an address past its cap can be told apart from another that is still served:

- past ``GENIE_MAX_CONNECTIONS_PER_IP`` / ``GENIE_MAX_CONNECTIONS`` a request gets 503
  with ``Retry-After`` and a WebSocket is closed 1013, while other addresses (per-address
  cap) are answered, and each refusal counts in ``/metrics``;
- a client that sends its headers or its body too slowly, or nothing at all, is cut
  after ``GENIE_HEADER_TIMEOUT`` / ``GENIE_BODY_TIMEOUT`` while a normal client is
  answered throughout;
- past ``GENIE_MAX_SYNTHESES_PER_CLIENT`` / ``GENIE_MAX_SYNTHESES`` every speech route
  refuses at once (429 / 503 with ``Retry-After``, ``/ws/tts`` an ``error`` frame
  ``busy``) and serves again once the streams end; a client that gives up before the
  first audio byte leaves no stream or slot behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from bench.robustness import floods
from fastapi_app.guards import slow_clients
from tests.fakes.openai_speech_server import FakeOpenAISpeech, run_in_thread
from tests.fleet.nodes import eventually
from tests.servers import ThreadServer, server_settings

pytestmark = pytest.mark.anyio

PER_ADDRESS, TOTAL = 3, 5
DEADLINE = 1.0  # header and body timeouts of the test server (seconds)
SYNTH_TOTAL, SYNTH_PER_CLIENT = 3, 2
KEY = "test-key"
LONG_TEXT = "A long answer that keeps streaming for a while. " * 2  # ~20 s at the fake's pace
NO_LIMITS = {"rate_limit_audio": 0, "rate_limit_speech": 0, "rate_limit_queries": 0}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    settings = {"max_connections_per_ip": PER_ADDRESS, "max_connections": TOTAL,
                "header_timeout": DEADLINE, "body_timeout": DEADLINE,
                "tts_providers": ["sample"], **NO_LIMITS}  # fmt: skip
    with ThreadServer(**settings) as running:
        yield running


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAISpeech]:
    # Slow chunks: a stream lasts far longer than a test holds it open.
    with run_in_thread(api_key=KEY, chunk_delay=0.25) as speech:
        yield speech


@pytest.fixture(scope="module")
def speech_server(fake: FakeOpenAISpeech) -> Iterator[ThreadServer]:
    settings = {"tts_providers": ["openai"], "openai_tts_base_url": fake.url,
                "openai_tts_api_key": KEY, "openai_tts_voice": "af_bella",
                "tts_cache_entries": 0, "max_syntheses": SYNTH_TOTAL,
                "max_syntheses_per_client": SYNTH_PER_CLIENT, **NO_LIMITS}  # fmt: skip
    with ThreadServer(**settings) as running:
        yield running


# --- clients from a given loopback address ----------------------------------------------


def http_from(server: ThreadServer, address: str, **options: Any) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    options = {"timeout": 20, **options}
    return httpx.AsyncClient(base_url=server.url, transport=transport, **options)


async def get_from(server: ThreadServer, address: str, path: str, **params: Any) -> httpx.Response:
    async with http_from(server, address) as http:
        return await http.get(path, params=params)


def ws_from(server: ThreadServer, address: str, forwarded_for: str | None = None) -> Any:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    return websockets.connect(f"{server.ws_url}/ws/tts", local_addr=(address, 0),
                              additional_headers=headers, max_size=None)  # fmt: skip


async def hold(
    held: contextlib.AsyncExitStack, server: ThreadServer, address: str,
    forwarded_for: str | None = None,
) -> None:  # fmt: skip
    """A WebSocket from ``address`` kept open until ``held`` closes; admitted for sure
    (its ping is answered, a refused one raises ConnectionClosed)."""
    ws = await held.enter_async_context(ws_from(server, address, forwarded_for))
    await ws.send(json.dumps({"ping": True}))
    await asyncio.wait_for(ws.recv(), 10)


async def ws_close_code(
    server: ThreadServer, address: str, forwarded_for: str | None = None
) -> int | None:
    """The code a WebSocket from ``address`` is closed with at once; None: it is served
    (its ping is answered)."""
    async with ws_from(server, address, forwarded_for) as ws:
        try:
            await ws.send(json.dumps({"ping": True}))
            await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None
    return None


def refused(metrics: str, name: str) -> dict[str, float]:
    """``name``'s samples by reason in a /metrics text."""
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == name
    }


async def in_flight(server: ThreadServer) -> float:
    """``genie_connections_in_flight``, this scrape's own request included."""
    response = await get_from(server, "127.0.0.1", "/metrics")
    (value,) = (
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "genie_connections_in_flight"
    )
    return value


async def quiet(server: ThreadServer) -> bool:
    """Nothing counted but the scrape asking."""
    return await in_flight(server) == 1


async def connection_refusals(server: ThreadServer) -> dict[str, float]:
    response = await get_from(server, "127.0.0.1", "/metrics")
    return refused(response.text, "genie_connections_refused_total")


def assert_busy(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["code"] == code and body["retry_after"] >= 1
    return body


async def served(server: ThreadServer, address: str) -> bool:
    return (await get_from(server, address, "/health")).status_code == 200


# --- connection caps ------------------------------------------------------------------------


async def test_an_address_past_its_cap_is_refused_while_another_is_served(
    server: ThreadServer,
) -> None:
    before = await connection_refusals(server)
    async with contextlib.AsyncExitStack() as held:
        for _ in range(PER_ADDRESS):
            await hold(held, server, "127.0.0.2")
        assert await ws_close_code(server, "127.0.0.2") == 1013
        body = assert_busy(await get_from(server, "127.0.0.2", "/health"), 503,
                           "too_many_connections")  # fmt: skip
        assert "your address" in body["message"]
        assert (await get_from(server, "127.0.0.3", "/health")).status_code == 200
        assert (await get_from(server, "127.0.0.1", "/health")).status_code == 200
        assert await in_flight(server) == PER_ADDRESS + 1  # the held sockets, this scrape
    await eventually(lambda: quiet(server), wait=10)
    assert await served(server, "127.0.0.2")
    after = await connection_refusals(server)
    assert after["address"] - before.get("address", 0) >= 2


async def test_past_the_total_cap_every_address_is_refused_until_one_leaves(
    server: ThreadServer,
) -> None:
    before = await connection_refusals(server)
    async with contextlib.AsyncExitStack() as held:
        for address in ["127.0.0.2"] * PER_ADDRESS + ["127.0.0.3"] * (TOTAL - PER_ADDRESS):
            await hold(held, server, address)
        assert await ws_close_code(server, "127.0.0.4") == 1013
        body = assert_busy(await get_from(server, "127.0.0.4", "/health"), 503,
                           "too_many_connections")  # fmt: skip
        assert "too many connections open" in body["message"]
    await eventually(lambda: quiet(server), wait=10)
    assert await served(server, "127.0.0.4")
    after = await connection_refusals(server)
    assert after["total"] - before.get("total", 0) >= 2


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_cap(
    server: ThreadServer,
) -> None:
    """uvicorn trusts X-Forwarded-For from loopback proxies only (GENIE_FORWARDED_ALLOW_IPS):
    through 127.0.0.1 each forwarded client is counted apart; from 127.0.0.2 the header
    is ignored, so a client cannot dodge its cap by naming another address."""
    async with contextlib.AsyncExitStack() as held:
        for _ in range(PER_ADDRESS):
            await hold(held, server, "127.0.0.1", "10.0.0.1")
        assert await ws_close_code(server, "127.0.0.1", "10.0.0.1") == 1013
        assert await ws_close_code(server, "127.0.0.1", "10.0.0.2") is None  # served
    await eventually(lambda: quiet(server), wait=10)
    async with contextlib.AsyncExitStack() as held:
        for _ in range(PER_ADDRESS):
            await hold(held, server, "127.0.0.2", "10.0.0.3")
        assert await ws_close_code(server, "127.0.0.2", "10.0.0.4") == 1013
        # Refused for its address (the header was ignored), not for the total.
        body = assert_busy(await get_from(server, "127.0.0.2", "/health"), 503,
                           "too_many_connections")  # fmt: skip
        assert "your address" in body["message"]


# --- slow clients -----------------------------------------------------------------------------


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.2) -> None:
    """Send ``data`` a byte at a time, until it is sent or the server hangs up."""
    with contextlib.suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)


async def cut_off(server: ThreadServer, address: str, head: bytes, slow: bytes) -> bytes:
    """Open a connection from ``address``, send ``head`` at once and ``slow`` a byte at a
    time; return what the server sent before it closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port,
                                                   local_addr=(address, 0))  # fmt: skip
    writer.write(head)
    sender = asyncio.create_task(trickle(writer, slow))
    try:
        # Far longer than the deadline, far shorter than the trickle (a byte per 0.2 s).
        async with asyncio.timeout(15):
            try:
                return await reader.read()  # until the server closes
            except ConnectionResetError:
                return b""
    finally:
        sender.cancel()
        writer.close()


def slow_post(server: ThreadServer, address: str, path: str) -> Any:
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 300\r\n\r\n")  # fmt: skip
    return cut_off(server, address, head.encode(), b'{"input": "' + b"a" * 280)


async def test_slow_headers_and_slow_bodies_are_cut_while_a_normal_client_is_served(
    server: ThreadServer, caplog: pytest.LogCaptureFixture
) -> None:
    before = await connection_refusals(server)
    never = cut_off(server, "127.0.0.5", b"", b"")
    slow_headers = cut_off(server, "127.0.0.6", b"GET /health HTTP/1.1\r\n",
                           b"Host: x\r\nX-Slow: " + b"a" * 200)  # fmt: skip
    # FastAPI reads the first body, the OpenAI route reads its own.
    bodies = [slow_post(server, "127.0.0.7", "/api/v1/tts"),
              slow_post(server, "127.0.0.8", "/v1/audio/speech")]  # fmt: skip
    slow = asyncio.gather(never, slow_headers, *bodies)
    answered: list[int] = []
    async with http_from(server, "127.0.0.1") as http:
        while not slow.done():
            answered.append((await http.get("/health")).status_code)
            await asyncio.sleep(0.05)
    got_never, got_headers, *got_bodies = await slow
    assert got_never.startswith(b"HTTP/1.1 408 ")
    assert got_headers.startswith(b"HTTP/1.1 408 ")
    assert all(b"HTTP/1.1 2" not in got for got in got_bodies)  # cut, never answered
    assert len(answered) >= 5 and set(answered) == {200}
    after = await connection_refusals(server)
    assert after["slow_headers"] - before.get("slow_headers", 0) >= 2
    assert after["slow_body"] - before.get("slow_body", 0) >= 2
    # A body cut short is a client gone, not a crash (it was one on /v1/audio/speech).
    assert "Exception in ASGI application" not in caplog.text


def test_the_slow_client_guard_reads_only_what_this_uvicorn_has() -> None:
    assert slow_clients.missing_internals() == []


def test_the_slow_client_guard_steps_aside_when_uvicorn_lacks_a_hook(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A uvicorn without a hooked callback would never call it: no deadlines, said once."""
    monkeypatch.setattr(slow_clients, "HOOKS", (*slow_clients.HOOKS, "on_renamed_callback"))
    monkeypatch.setattr(slow_clients, "_off", False)  # restored after the test
    with caplog.at_level(logging.WARNING, logger=slow_clients.__name__):
        assert slow_clients.slow_client_protocol(server_settings()) == "auto"
        assert slow_clients.slow_client_protocol(server_settings()) == "auto"
    assert caplog.text.count("on_renamed_callback") == 1


# --- synthesis caps ---------------------------------------------------------------------------


async def open_stream(http: httpx.AsyncClient, held: contextlib.AsyncExitStack) -> None:
    """A speech stream that stays open (its first audio is in) until ``held`` closes."""
    response = await held.enter_async_context(
        http.stream("GET", "/api/get-audio", params={"msg": LONG_TEXT})
    )
    assert response.status_code == 200


async def synthesis_refusals(server: ThreadServer) -> dict[str, float]:
    response = await get_from(server, "127.0.0.1", "/metrics")
    return refused(response.text, "genie_tts_syntheses_refused_total")


async def busy_frame(server: ThreadServer, address: str) -> dict[str, Any]:
    async with ws_from(server, address) as ws:
        await ws.send(json.dumps({"text": "Hello there."}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["status"] in ("error", "complete"):
                return frame


async def test_past_a_synthesis_cap_every_speech_route_refuses_then_serves_again(
    speech_server: ThreadServer,
) -> None:
    server = speech_server
    before = await synthesis_refusals(server)
    async with contextlib.AsyncExitStack() as held:
        mine = await held.enter_async_context(http_from(server, "127.0.0.1"))
        theirs = await held.enter_async_context(http_from(server, "127.0.0.2"))
        for _ in range(SYNTH_PER_CLIENT):
            await open_stream(mine, held)
        # My own share is used up: 429; another client still has room.
        assert_busy(await mine.get("/api/get-audio", params={"msg": "Hi."}), 429, "busy")
        await open_stream(theirs, held)
        # Now everyone's is: 503 on every route, a busy frame on /ws/tts.
        assert_busy(await theirs.get("/get_tts_audio", params={"tts_text": "Hi."}), 503, "busy")
        assert_busy(await theirs.post("/api/v1/tts", json={"text": "Hi."}), 503, "busy")
        openai = await theirs.post("/v1/audio/speech", json={"model": "kokoro",
                                   "input": "Hi.", "voice": "af_bella"})  # fmt: skip
        assert openai.status_code == 503 and openai.headers["retry-after"] == "2"
        assert openai.json()["error"]["code"] == "busy"
        frame = await busy_frame(server, "127.0.0.2")
        assert frame["code"] == "busy" and frame["retry_after"] > 0
        assert server.runtime.synthesis.open == SYNTH_TOTAL
    # The streams ended with their clients: the slots are free again.
    await eventually(lambda: speaks(server), wait=15)
    await eventually(lambda: released(server), wait=15)
    after = await synthesis_refusals(server)
    assert after["client"] - before.get("client", 0) >= 1
    assert after["total"] - before.get("total", 0) >= 4


async def released(server: ThreadServer) -> bool:
    """No synthesis slot held and no audio stream open."""
    runtime = server.runtime
    return runtime.synthesis.open == 0 and len(runtime.streams) == 0


async def speaks(server: ThreadServer) -> bool:
    response = await get_from(server, "127.0.0.1", "/api/get-audio", msg="Hi.")
    return response.status_code == 200 and len(response.content) > 0


async def test_a_client_gone_before_the_first_audio_leaves_no_stream_or_slot(
    speech_server: ThreadServer, fake: FakeOpenAISpeech
) -> None:
    """Its stream's producer is cancelled and the synthesis slot comes back, although
    no answer was ever sent."""
    server = speech_server
    fake.first_byte_delay = 0.6
    try:
        async with http_from(server, "127.0.0.3", timeout=0.2) as http:
            for _ in range(SYNTH_PER_CLIENT):
                with pytest.raises(httpx.ReadTimeout):
                    await http.get("/api/get-audio", params={"msg": LONG_TEXT})
    finally:
        fake.first_byte_delay = 0.0
    await eventually(lambda: released(server), wait=15)
    assert await speaks(server)


# --- the bench, CI size ----------------------------------------------------------------------


async def test_the_flood_bench_runs_small() -> None:
    """``bench.robustness.floods`` end to end against its own server process: floods
    refused as the caps say, slow clients cut, the well-behaved client always answered."""
    scale = 24
    section = await floods.run(scale, addresses=4, hold=0.2, calm=0.25, header_timeout=1.0,
                               body_timeout=1.0, progress=lambda _: None)  # fmt: skip
    assert section.passed, section.failures
    one_address, many, slowloris = section.figures["plan"], *section.rows[1:]
    assert one_address["per_ip"] == scale // 4
    assert section.rows[0][1:3] == [str(scale), str(scale - scale // 4)]
    assert many[2] == "0" and slowloris[2] == str(scale)
    assert section.figures["connections_tried"] == 3 * scale
