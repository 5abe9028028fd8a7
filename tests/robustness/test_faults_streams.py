"""A client vanishing mid-stream, over the wire: it reads the first audio bytes of
``/api/get-audio``, ``/v1/audio/speech`` or ``/ws/tts`` and closes its TCP connection
(no WebSocket close frame either). The synthesis upstream is cancelled (the fake
OpenAI-compatible server stops being read and its stream never finishes), the engine's
in-flight gauge on ``/health`` goes back to 0, and the server holds no more tasks or
file descriptors than before.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import websockets

from tests.fakes.openai_speech_server import FakeOpenAISpeech, run_in_thread
from tests.fleet.nodes import eventually
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

KEY = "test-key"
# About 70 s of the fake's tone in 700 chunks, 20 ms apart: 14 s if read to the end.
TEXT = " ".join(["Nobody stays to hear this long answer to the end."] * 20)
CHUNKS = 700


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAISpeech]:
    with run_in_thread(api_key=KEY, chunk_delay=0.02) as server:
        yield server


@pytest.fixture(scope="module")
def server(fake: FakeOpenAISpeech) -> Iterator[ThreadServer]:
    settings: dict[str, Any] = {
        "tts_providers": [f"openai@{fake.url}"],
        "openai_tts_api_key": KEY,
        "openai_tts_voice": "af_bella",
        "tts_cache_entries": 0,
        "rate_limit_audio": 0,
        "rate_limit_speech": 0,
    }
    with ThreadServer(**settings) as running:
        yield running


def http_request(path: str) -> bytes:
    if path == "/api/get-audio":
        query = httpx.QueryParams({"msg": TEXT})
        return f"GET {path}?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    body = json.dumps({"model": "kokoro", "input": TEXT, "voice": "af_bella"}).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


async def vanish_over_http(server: ThreadServer, path: str) -> None:
    """Send the request, read up to the first body bytes, close the socket."""
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(http_request(path))
        data = b""
        while b"\r\n\r\n" not in data or data.endswith(b"\r\n\r\n"):
            data += await stream.receive()
    assert data.startswith(b"HTTP/1.1 200"), data[:300]


async def vanish_over_ws_tts(server: ThreadServer) -> None:
    """Ask, read up to the first binary frame, drop the TCP connection (no close frame)."""
    conn = await websockets.connect(server.ws_url + "/ws/tts")
    await conn.send(json.dumps({"text": TEXT, "voice": "af_bella"}))
    while not isinstance(await asyncio.wait_for(conn.recv(), 15), bytes):
        pass
    conn.transport.abort()


def resources(server: ThreadServer) -> tuple[int, int]:
    """(tasks on the server's loop, file descriptors of this process)."""
    tasks = server.call(lambda: len(asyncio.all_tasks()))
    return tasks, len(os.listdir("/proc/self/fd"))


async def settled(server: ThreadServer, http: httpx.AsyncClient, fake: FakeOpenAISpeech) -> None:
    async def idle() -> bool:
        speech = (await http.get("/health")).json()["speech"][0]
        return speech["in_flight"] == 0 and fake.in_flight == 0

    await eventually(idle)


@pytest.mark.parametrize("path", ["/api/get-audio", "/v1/audio/speech", "/ws/tts"])
async def test_a_client_that_vanishes_mid_stream_cancels_the_synthesis_and_leaks_nothing(
    server: ThreadServer, http: httpx.AsyncClient, fake: FakeOpenAISpeech, path: str
) -> None:
    # One whole answer first: the pooled upstream connection exists on both sides.
    assert (await http.get("/api/get-audio", params={"msg": "Warm up."})).status_code == 200
    await settled(server, http, fake)
    before = resources(server)
    asked = len(fake.requests)

    if path == "/ws/tts":
        await vanish_over_ws_tts(server)
    else:
        await vanish_over_http(server, path)
    await settled(server, http, fake)

    seen = fake.requests[asked:]
    assert len(seen) == 1 and not seen[0].finished  # the upstream stream was dropped
    sent = seen[0].chunks_sent
    await anyio.sleep(0.3)  # 15 more chunks if anything still read it
    assert seen[0].chunks_sent == sent < CHUNKS // 2

    async def back_to(baseline: tuple[int, int]) -> bool:
        tasks, fds = resources(server)
        return tasks <= baseline[0] and fds <= baseline[1]

    await eventually(lambda: back_to(before), wait=10)
