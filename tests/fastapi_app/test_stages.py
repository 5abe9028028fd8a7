"""Each stage started by config and exercised over the wire (seed 003)."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest
import websockets

from config import STATIC_DIR
from tests.audio import duration, rms
from tests.fastapi_app.helpers import WsClient
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

SHORT = "Hello."
LONG = "Hello. This sentence is a good deal longer, so it takes longer to say out loud."


async def _audio(client: httpx.AsyncClient, text: str, **params: object) -> httpx.Response:
    response = await client.get("/api/get-audio", params={"msg": text, **params})
    assert response.status_code == 200, response.text
    return response


async def test_skeletal_answers_health_and_always_plays_the_sample(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sample = duration((STATIC_DIR / "sample-audio.mp3").read_bytes())
    async with (
        ThreadServer(stage="skeletal") as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        health = (await http.get("/health")).json()
        assert health["status"] == "ok" and health["stage"] == "skeletal"
        # Every stage has the page (over Socket.IO here): "/" sends a browser to it.
        root = await http.get("/")
        assert root.status_code == 302 and root.headers["location"] == "/genie"
        assert (await http.get("/genie")).status_code == 200
        for text in (SHORT, LONG):
            response = await _audio(http, text)
            assert response.headers["content-type"] == "audio/mpeg"
            assert duration(response.content) == pytest.approx(sample, abs=0.05)
        # No native WebSocket in this stage.
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(server.ws_url + "/ws")
        # The queues run and call emit_audio, which only logs (the seed's stub).
        with caplog.at_level(logging.INFO, logger="fastapi_app.sockets.hub"):
            assert (await http.get("/push", params={"question": "what is 1 plus 1"})).is_success
            await _wait_done(http, 1)
        assert "[STUB] emit_audio called" in caplog.text


async def test_mvp_synthesizes_and_answers_each_client_on_its_own_socket() -> None:
    async with ThreadServer(stage="mvp") as server, httpx.AsyncClient(base_url=server.url) as http:
        short = await _audio(http, SHORT)
        long = await _audio(http, LONG)
        assert "content-length" in long.headers  # the MVP synthesizes, then answers
        assert duration(long.content) > duration(short.content) * 2
        assert rms(long.content) > 100  # speech, not silence

        async with (
            await WsClient.connect(server.ws_url + "/ws") as asker,
            await WsClient.connect(server.ws_url + "/ws") as other,
        ):
            assert asker.client_id != other.client_id
            hello = asker.seen[0]
            assert set(hello) == {"type", "client_id", "timestamp"}  # no seq before full
            await asker.send(type="query", text="what is 6 times 7")
            first = await asker.next("audio_update")
            answer = await asker.next("audio_update")
            msg = parse_qs(urlsplit(answer["audioURL"]).query)["msg"][0]
            assert "42" in msg and answer["audioURL"].startswith("/api/get-audio?msg=")
            audio = await http.get(answer["audioURL"])
            assert duration(audio.content) > 0.5
            assert first["audioURL"] != answer["audioURL"]
            # The other client sees the shared queue counts but not the asker's audio.
            await other.next("done_update")
            await other.send(type="ping")
            await other.next("pong")
            assert not [f for f in other.seen if f["type"] == "audio_update"]


async def test_full_streams_audio_with_voice_speed_and_format() -> None:
    async with ThreadServer(stage="full") as server, httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream("GET", "/api/get-audio", params={"msg": LONG}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "audio/mpeg"
            assert "content-length" not in response.headers
            assert response.headers.get("transfer-encoding") == "chunked"
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        short = await _audio(http, SHORT)
        assert duration(body) > duration(short.content) * 2

        fast = await _audio(http, LONG, speed=2.0)
        assert duration(fast.content) < duration(body) * 0.75
        wav = await _audio(http, LONG, format="wav")
        assert wav.headers["content-type"] == "audio/wav"
        assert duration(wav.content, "wav") == pytest.approx(duration(body), rel=0.2)
        voices = (await http.get("/api/voices")).json()
        assert voices["voices"] and "mp3" in voices["formats"]
        voice = voices["voices"][0]["id"]
        assert duration((await _audio(http, SHORT, voice=voice)).content) > 0.2


async def test_full_rejects_bad_speech_input_with_clear_errors() -> None:
    async with ThreadServer(stage="full") as server, httpx.AsyncClient(base_url=server.url) as http:
        missing = await http.get("/api/get-audio")
        assert missing.status_code == 422
        too_long = await http.get("/api/get-audio", params={"msg": "a" * 5001})
        assert too_long.status_code == 413 and too_long.json()["code"] == "text_too_long"
        longest = await http.get("/api/get-audio", params={"msg": "Yes. " * 1000})
        assert longest.status_code == 200 and duration(longest.content) > 10
        voice = await http.get("/api/get-audio", params={"msg": "hi", "voice": "nope"})
        assert voice.status_code == 422 and voice.json()["code"] == "unknown_voice"
        assert "valid voices" in voice.json()["message"]
        speed = await http.get("/api/get-audio", params={"msg": "hi", "speed": 99})
        assert speed.status_code == 422
        fmt = await http.get("/api/get-audio", params={"msg": "hi", "format": "ogg"})
        assert fmt.status_code == 422 and fmt.json()["code"] == "unsupported_format"


async def test_docs_describe_every_http_route() -> None:
    async with ThreadServer(stage="full") as server, httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/docs")).status_code == 200
        paths = set((await http.get("/openapi.json")).json()["paths"])
    expected = {
        "/",
        "/health",
        "/metrics",
        "/api/get-audio",
        "/api/voices",
        "/push",
        "/get_queue/{queue_name}",
        "/get_tts_audio",
        "/get-answer/{id_hash}",
        "/delete-snapshot/{id_hash}",
        "/static/{path}",
    }
    assert expected <= paths


async def _wait_done(http: httpx.AsyncClient, count: int) -> None:
    for _ in range(200):
        if (await http.get("/health")).json()["jobs"]["done"] >= count:
            return
        await anyio.sleep(0.05)
    raise AssertionError("the job did not finish")
