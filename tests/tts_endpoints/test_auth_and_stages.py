"""JWT on ``/ws/tts`` and ``/v1/audio/speech``; the skeletal stage answers 503, not a crash."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
import websockets

from fastapi_app.auth.security import TokenVerifier
from tests.audio import duration
from tests.tts_endpoints.scenes_client import scene_server
from tests.tts_endpoints.wsclient import next_json, read_reply

pytestmark = pytest.mark.anyio
SECRET = "test-secret-for-tts-endpoints-0123456789"


async def test_ws_tts_and_openai_need_a_token_when_auth_is_on() -> None:
    token = TokenVerifier(SECRET).issue("carol")
    async with scene_server(jwt_secret=SECRET) as server:
        async with websockets.connect(f"{server.ws_url}/ws/tts") as conn:
            refused = await next_json(conn)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await conn.recv()
        async with websockets.connect(f"{server.ws_url}/ws/tts?token={token}") as conn:
            await conn.send(json.dumps({"text": "Authorised."}))
            reply = await read_reply(conn)
        args = {"model": "tts-1", "voice": "alloy", "input": "Hello there."}
        base = f"{server.url}/v1"
        async with openai.AsyncOpenAI(base_url=base, api_key="wrong", max_retries=0) as api:
            with pytest.raises(openai.AuthenticationError):
                await api.audio.speech.create(**args)
        async with (
            openai.AsyncOpenAI(base_url=base, api_key=token, max_retries=0) as api,
            api.audio.speech.with_streaming_response.create(**args) as response,
        ):
            audio = await response.read()
    assert refused["status"] == "error" and refused["code"] == "missing_token"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert reply.order[-1] == "complete"
    assert duration(audio) > 0.5


async def test_skeletal_stage_answers_503_on_every_speech_route() -> None:
    async with (
        scene_server(stage="skeletal") as server,
        httpx.AsyncClient(base_url=server.url, timeout=15) as http,
    ):
        statuses = [
            (await http.post("/api/v1/tts", json={"text": "hi"})).status_code,
            (await http.post("/api/scenes", json={"chunks": ["hi"]})).status_code,
            (await http.post("/api/tts/generate-ws/1")).status_code,
            (await http.post("/v1/audio/speech", json={})).status_code,
        ]
        page = await http.get("/stream-player")
        async with websockets.connect(f"{server.ws_url}/ws/tts") as conn:
            error = await next_json(conn)
    assert statuses == [503, 503, 503, 503]
    assert page.status_code == 200 and "stream-player.js" in page.text
    assert error["status"] == "error"
