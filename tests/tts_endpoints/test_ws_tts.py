"""Seed 004 over the wire: ``WS /ws/tts`` and ``POST /api/v1/tts`` on a real server."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
import websockets

from tests.audio import duration
from tests.servers import ThreadServer
from tests.tts_endpoints.wsclient import next_json, read_reply
from wire.tts_frames import MAX_BINARY_FRAME

pytestmark = pytest.mark.anyio

THREE = (
    "The first sentence is short. The second sentence is a good deal longer than the "
    "first one, so it takes more time to speak. And here is a third sentence to finish."
)


def ws_url(server: ThreadServer) -> str:
    return f"{server.ws_url}/ws/tts"


async def test_request_streams_statuses_then_mp3_frames(server: ThreadServer) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"text": THREE, "lang": "en"}))
        reply = await read_reply(conn)
    assert reply.order[:2] == ["generating", "ready"]
    assert reply.order[-1] == "complete"
    assert set(reply.order[2:-1]) == {"bin"}
    assert reply.status("generating")["message"].startswith("Generating speech for: The first")
    assert all(0 < len(frame) <= MAX_BINARY_FRAME for frame in reply.frames)
    complete = reply.status("complete")
    assert complete["size"] == len(reply.audio) and complete["frames"] == len(reply.frames)
    assert duration(reply.audio) > 5.0


async def test_first_frame_is_the_first_sentence_not_a_full_buffer(server: ThreadServer) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"text": THREE}))
        reply = await read_reply(conn)
    first_size = reply.status("ready")["size"]  # what was encoded when streaming started
    assert 0 < first_size < len(reply.audio)
    assert len(reply.frames) > 1
    # Constant bit rate: bytes are proportional to time, and the first frame went out
    # once the first (short) sentence began encoding, not after 8 KB had piled up.
    assert first_size < MAX_BINARY_FRAME
    assert first_size * 4 < len(reply.audio)


async def test_ping_is_answered_idle_and_while_streaming(server: ThreadServer) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"ping": True}))
        assert (await next_json(conn))["status"] == "pong"
        await conn.send(json.dumps({"text": THREE * 3}))
        await conn.send(json.dumps({"ping": True}))
        reply = await read_reply(conn)
    assert "pong" in reply.order
    assert reply.order.index("pong") < reply.order.index("complete")


async def test_bad_json_and_long_text_leave_the_socket_usable(server: ThreadServer) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send("{not json")
        error = await next_json(conn)
        assert error["status"] == "error" and error["code"] == "invalid_json"
        await conn.send(json.dumps(["a list"]))
        assert (await next_json(conn))["code"] == "invalid_json"
        await conn.send(json.dumps({"text": "x" * 5001}))
        error = await next_json(conn)
        assert error["code"] == "text_too_long" and "5000" in error["error"]
        await conn.send(json.dumps({"text": ""}))
        assert (await next_json(conn))["code"] == "invalid_text"
        await conn.send(b"\x00binary")
        assert (await next_json(conn))["code"] == "invalid_frame"
        await conn.send(json.dumps({"text": "Still here."}))
        reply = await read_reply(conn)
    assert reply.order[-1] == "complete" and duration(reply.audio) > 0.3


async def test_deep_nesting_and_lone_surrogates_are_invalid_json(server: ThreadServer) -> None:
    # Found by the parser fuzzer: before, the nesting closed the socket (RecursionError)
    # and a lone surrogate in the text got no answer at all.
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send("[" * 5000 + "]" * 5000)
        assert (await next_json(conn))["code"] == "invalid_json"
        await conn.send('{"text": "hi \\ud800 there"}')
        assert (await next_json(conn))["code"] == "invalid_json"
        await conn.send(json.dumps({"ping": True}))
        assert (await next_json(conn))["status"] == "pong"


async def test_unknown_language_lists_the_valid_ones(server: ThreadServer) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"text": "Hola", "lang": "xx"}))
        error = await next_json(conn)
    assert error["code"] == "unknown_language"
    for code in ("de", "en", "es", "fr", "hi", "it", "ja", "ko", "pt", "ru", "zh"):
        assert code in error["error"]


@pytest.mark.parametrize("lang", ["es", "fr", "de", "it", "pt", "ru", "ja", "ko", "zh", "hi"])
async def test_every_seed_language_speaks(server: ThreadServer, lang: str) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"text": "1 2 3 4 5", "lang": lang}))
        reply = await read_reply(conn)
    assert reply.order[-1] == "complete" and duration(reply.audio) > 0.5


async def test_requests_sent_while_streaming_are_queued_in_order(server: ThreadServer) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"text": THREE}))
        await conn.send(json.dumps({"text": "Second request."}))
        first = await read_reply(conn)
        second = await read_reply(conn)
    assert "The first" in first.status("generating")["message"]
    assert "Second request." in second.status("generating")["message"]
    assert second.order[0] == "generating" and second.order[-1] == "complete"
    assert duration(first.audio) > 4 * duration(second.audio)


async def test_cancel_stops_the_current_request(server: ThreadServer) -> None:
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"text": THREE * 10}))
        await next_json(conn)  # generating
        await conn.send(json.dumps({"cancel": True}))
        reply = await read_reply(conn, until=("cancelled", "complete"))
        assert reply.order[-1] == "cancelled"
        await conn.send(json.dumps({"text": "After the cancel."}))
        after = await read_reply(conn)
    assert after.order[0] == "generating" and after.order[-1] == "complete"


async def test_post_v1_tts_returns_the_whole_mp3_as_a_download(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as client:
        ok = await client.post("/api/v1/tts", json={"text": THREE, "lang": "en"})
        too_long = await client.post("/api/v1/tts", json={"text": "x" * 5001})
        bad_lang = await client.post("/api/v1/tts", json={"text": "hi", "lang": "xx"})
        health = await client.get("/health")
    assert ok.status_code == 200 and ok.headers["content-type"] == "audio/mpeg"
    assert ok.headers["content-disposition"] == 'attachment; filename="speech.mp3"'
    assert duration(ok.content) > 5.0
    assert too_long.status_code == 413
    assert bad_lang.status_code == 422 and "zh" in bad_lang.json()["message"]
    assert health.status_code == 200 and health.json()["status"] == "ok"


async def test_closing_the_socket_mid_stream_stops_synthesis(server: ThreadServer) -> None:
    def segments() -> int:
        return int(server.call(lambda: server.runtime.speech.providers[0].segments_synthesized))

    long_text = " ".join(f"Sentence {i} of a long text that nobody hears." for i in range(100))
    before = segments()
    async with websockets.connect(ws_url(server)) as conn:
        await conn.send(json.dumps({"text": long_text}))
        await read_reply(conn, until=("ready",))
    previous, now = -1, segments()
    while now != previous:  # settle: the stream winds down after the close
        await anyio.sleep(0.2)
        previous, now = now, segments()
    assert now - before < 50  # of 100 sentences: synthesis stopped with the socket
