"""Native /ws: bad input answered with error frames (the socket stays), frame limit 1009,
sequence numbers (full stage)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets

from fastapi_app.features import Features, StageConfigError
from tests.audio import duration
from tests.fastapi_app.helpers import WsClient
from tests.servers import ThreadServer, server_settings

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> ThreadServer:
    with ThreadServer(stage="full") as running:
        yield running


async def test_bad_json_gets_an_error_frame_and_the_socket_stays_open(
    server: ThreadServer,
) -> None:
    async with await WsClient.connect(server.ws_url + "/ws") as ws:
        await ws.conn.send("{this is not json")
        error = await ws.next("error")
        assert error["code"] == "bad_json" and error["message"]
        await ws.conn.send(b"\x00\x01binary")
        assert (await ws.next("error"))["code"] == "binary_frame"
        await ws.send(type="teleport")
        assert (await ws.next("error"))["code"] == "unknown_type"
        await ws.send(type="query", text=42)
        assert (await ws.next("error"))["code"] == "bad_field"
        await ws.send(type="query", text="   ")
        assert (await ws.next("error"))["code"] == "empty_question"
        await ws.send(type="query", text="x" * 5001)
        assert (await ws.next("error"))["code"] == "question_too_long"
        await ws.send(type="ping")
        assert (await ws.next("pong"))["type"] == "pong"
        await ws.send(type="query", text="what is 9 plus 1")
        answer = (await ws.count("audio_update", 2))[-1]
        assert "10" in answer["audioURL"]


async def test_a_frame_over_64_kib_closes_with_1009(server: ThreadServer) -> None:
    async with await WsClient.connect(server.ws_url + "/ws") as ws:
        # Just under the limit is fine (and only too long a question).
        await ws.send(type="query", text="y" * (60 * 1024))
        assert (await ws.next("error"))["code"] == "question_too_long"
        await ws.conn.send(json.dumps({"type": "query", "text": "z" * (65 * 1024)}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_every_frame_carries_a_sequence_number(server: ThreadServer) -> None:
    async with await WsClient.connect(server.ws_url + "/ws") as ws:
        await ws.send(type="query", text="what is 2 times 3")
        await ws.count("audio_update", 2)
        assert ws.of("queued")
        await ws.send(type="ping")
        pong = await ws.next("pong")
    assert all("seq" in frame for frame in ws.seen)
    data = [f["seq"] for f in ws.seen if f["type"] not in ("connection_established", "pong")]
    # Data frames: rising numbers from 1 (a gap is a count a newer one replaced).
    assert data == sorted(set(data)) and data[0] == 1
    assert pong["seq"] == data[-1]  # control frames repeat the latest one


async def test_voice_and_speed_of_a_query_reach_its_audio_urls(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        voice = (await http.get("/api/voices")).json()["voices"][0]["id"]
        async with await WsClient.connect(server.ws_url + "/ws") as ws:
            await ws.send(type="query", text="what is 1 plus 1", voice="no-such-voice")
            assert (await ws.next("error"))["code"] == "unknown_voice"
            await ws.send(type="query", text="what is 1 plus 1", voice=voice, speed=1.5)
            answer = (await ws.count("audio_update", 2))[-1]["audioURL"]
            query = parse_qs(urlsplit(answer).query)
            assert query["voice"] == [voice] and query["speed"] == ["1.5"]
            assert query["client_id"] == [ws.client_id]  # ties the stream to this socket
            audio = await http.get(answer)
            assert audio.status_code == 200 and duration(audio.content) > 0.3


def test_auth_is_refused_outside_the_full_stage() -> None:
    settings = server_settings(stage="mvp", jwt_secret="a-secret-for-a-stage-without-auth")
    with pytest.raises(StageConfigError):
        Features.for_settings(settings)


async def test_deep_nesting_and_lone_surrogates_get_an_error_and_the_socket_stays(
    server: ThreadServer,
) -> None:
    # Found by the parser fuzzer: before, the nesting closed the socket (RecursionError)
    # and the surrogate's answer was never spoken (its audio URL could not be built).
    async with await WsClient.connect(server.ws_url + "/ws") as ws:
        await ws.conn.send("[" * 5000 + "]" * 5000)
        assert (await ws.next("error"))["code"] == "bad_json"
        await ws.conn.send('{"type": "query", "text": "hi \\ud800 there"}')
        assert (await ws.next("error"))["code"] == "bad_json"
        await ws.send(type="ping")
        assert (await ws.next("pong"))["type"] == "pong"
