"""One engine behind every speech endpoint of both servers: with an OpenAI-compatible
server first in the chain (a fake on loopback), every route speaks with its voice, and
when it fails the chain falls back to espeak and ``/health`` shows the breaker.

The fake's MP3 is 24 kHz and espeak's 22,050 Hz, so the decoded rate tells which
provider spoke; durations are measured, never bytes compared.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import websockets

from tests import audio
from tests.fakes.openai_speech_server import SAMPLE_RATE, FakeOpenAISpeech, run_in_thread
from tests.flask_app.launch import flask_server
from tests.servers import ThreadServer
from tests.tts_endpoints.scenes_client import new_scene, session_frames, start_session
from tests.tts_endpoints.wsclient import read_reply

pytestmark = pytest.mark.anyio

KEY = "test-key"
TEXT = "The natural voice answers every route."
SECONDS = len(TEXT) * 0.07  # the fake's tone lasts this long


def speech_settings(fake: FakeOpenAISpeech) -> dict[str, Any]:
    return {
        "tts_providers": [f"openai@{fake.url}", "espeak"],
        "openai_tts_api_key": KEY,
        "openai_tts_voice": "af_bella",
        "tts_cache_entries": 0,
        "tts_breaker_failures": 2,
        "tts_breaker_cooldown": 60.0,
        "rate_limit_audio": 0,
        "rate_limit_speech": 0,
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAISpeech]:
    with run_in_thread(api_key=KEY, chunk_delay=0.002) as server:
        yield server


@pytest.fixture(scope="module")
def server(fake: FakeOpenAISpeech) -> Iterator[ThreadServer]:
    with ThreadServer(**speech_settings(fake)) as running:
        yield running


def spoken_by_fake(data: bytes, fmt: str = "mp3") -> bool:
    samples, rate = audio.decode(data, fmt)
    return rate == SAMPLE_RATE and abs(len(samples) / rate - SECONDS) < 0.15


async def test_every_fastapi_route_speaks_through_the_openai_provider(
    server: ThreadServer, fake: FakeOpenAISpeech
) -> None:
    fake.mode = "ok"
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        get_audio = await http.get("/api/get-audio", params={"msg": TEXT})
        v1_tts = await http.post("/api/v1/tts", json={"text": TEXT})
        legacy = await http.get("/get_tts_audio", params={"tts_text": TEXT})
        scene_id = await new_scene(http, [TEXT])
        session = await start_session(http, scene_id)
    assert spoken_by_fake(get_audio.content)
    assert spoken_by_fake(v1_tts.content)
    assert spoken_by_fake(legacy.content)
    seen = await session_frames(f"{server.ws_url}/ws/tts/{session}")
    (ready,) = seen.of("chunk_ready")
    assert spoken_by_fake(base64.b64decode(ready["audio"]))
    async with websockets.connect(f"{server.ws_url}/ws/tts") as conn:
        await conn.send(json.dumps({"text": TEXT}))
        reply = await read_reply(conn)
    assert spoken_by_fake(reply.audio)
    assert [r.input for r in fake.requests].count(TEXT) == 5  # one per route


async def test_openai_clients_reach_the_upstream_voice_and_get_a_whole_wav(
    server: ThreadServer, fake: FakeOpenAISpeech
) -> None:
    fake.mode = "ok"
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/v1", api_key="unused", max_retries=0
    ) as client:
        mp3 = await client.audio.speech.create(model="tts-1", voice="af_sky", input=TEXT)
        wav = await client.audio.speech.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="wav"
        )
    assert spoken_by_fake(mp3.content)
    assert [r.voice for r in fake.requests[-2:]] == ["af_sky", "alloy"]
    data = wav.content
    sizes = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 40)[0]
    assert sizes == (len(data) - 8, len(data) - 44)  # true RIFF and data sizes, not 0xFFFFFFFF
    assert spoken_by_fake(data, "wav")


async def test_voices_and_health_show_each_provider(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        await http.get("/api/get-audio", params={"msg": TEXT})
        voices = (await http.get("/api/voices")).json()
        health = (await http.get("/health")).json()
        metrics = (await http.get("/metrics")).text
    ids = {v["id"] for v in voices["voices"]}
    assert {"af_bella", "af_sky", "en-us"} <= ids  # the fake's and espeak's, merged
    upstream, espeak = health["speech"]
    assert upstream["kind"] == "openai" and upstream["name"].startswith("openai@127.0.0.1:")
    assert upstream["first_byte_ms"]["samples"] >= 1 and upstream["first_byte_ms"]["p99"] > 0
    assert espeak["name"] == "espeak"
    labels = f'genie_tts_provider_state="up",provider="{upstream["name"]}"'
    assert f"genie_tts_provider_state{{{labels}}} 1.0" in metrics


async def test_a_failing_upstream_falls_back_and_is_taken_out(fake: FakeOpenAISpeech) -> None:
    # A server of its own: this test opens the breaker.
    with ThreadServer(**speech_settings(fake)) as server:
        fake.mode = "500"
        try:
            asked = len(fake.requests)
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
                answers = [await http.get("/api/get-audio", params={"msg": TEXT}) for _ in range(4)]
                health = (await http.get("/health")).json()
                voices = (await http.get("/api/voices")).json()
        finally:
            fake.mode = "ok"
    for answer in answers:  # espeak spoke every time, at its own rate
        assert answer.status_code == 200 and audio.decode(answer.content)[1] == 22050
    assert len(fake.requests) - asked == 2  # then the breaker kept it out
    assert health["speech"][0]["state"] == "cooling_down"
    assert health["speech"][0]["failures"] == 2
    assert "af_bella" not in {v["id"] for v in voices["voices"]}


async def test_the_flask_server_speaks_through_the_same_engine(fake: FakeOpenAISpeech) -> None:
    fake.mode = "ok"
    with flask_server("threading", settings=speech_settings(fake)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            legacy = await http.get("/get_tts_audio", params={"tts_text": TEXT})
            health = (await http.get("/health")).json()
    assert spoken_by_fake(legacy.content)
    assert health["speech"][0]["kind"] == "openai" and health["speech"][0]["state"] == "up"
