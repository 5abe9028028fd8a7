"""Full stage: JWT auth, Origin allow-list, rate limits, /metrics."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest
import socketio
import websockets

from fastapi_app.auth.security import TokenVerifier
from tests.fastapi_app.helpers import WsClient
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

SECRET = "test-secret-at-least-32-bytes-long!"


def _token(subject: str = "alice", ttl: float = 600) -> str:
    return TokenVerifier(SECRET).issue(subject, ttl=ttl)


def _expired(subject: str = "alice") -> str:
    return TokenVerifier(SECRET).issue(subject, ttl=-120)  # well past the leeway


def _forged(subject: str = "alice") -> str:
    return TokenVerifier("another-secret-also-32-bytes-long!!").issue(subject, ttl=600)


@pytest.fixture(scope="module")
def auth_server() -> ThreadServer:
    with ThreadServer(stage="full", jwt_secret=SECRET) as running:
        yield running


async def test_jwt_over_http_accepted_rejected_expired(auth_server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=auth_server.url) as http:
        assert (await http.get("/health")).status_code == 200  # probes stay open
        params = {"msg": "hello"}
        missing = await http.get("/api/get-audio", params=params)
        assert missing.status_code == 401 and missing.json()["code"] == "missing_token"
        assert missing.headers["www-authenticate"] == "Bearer"
        bearer = {"Authorization": f"Bearer {_token()}"}
        assert (await http.get("/api/get-audio", params=params, headers=bearer)).status_code == 200
        query = await http.get("/api/get-audio", params={**params, "token": _token()})
        assert query.status_code == 200
        expired = await http.get(
            "/api/get-audio", params=params, headers={"Authorization": f"Bearer {_expired()}"}
        )
        assert expired.status_code == 401 and expired.json()["code"] == "token_expired"
        forged = await http.get("/push", params={"question": "hi", "token": _forged()})
        assert forged.status_code == 401 and forged.json()["code"] == "invalid_token"
        assert (await http.get("/get_queue/todo")).status_code == 401


async def test_jwt_over_websocket_header_query_and_first_frame(auth_server: ThreadServer) -> None:
    url = auth_server.ws_url + "/ws"
    headers = {"Authorization": f"Bearer {_token()}"}
    async with await WsClient.connect(url, additional_headers=headers) as by_header:
        assert by_header.client_id
    async with await WsClient.connect(f"{url}?token={_token()}") as by_query:
        assert by_query.client_id
    # Browsers cannot set headers: the first frame carries the token.
    async with await WsClient.connect(url, greet=False) as by_frame:
        await by_frame.send(type="auth", token=_token())
        await by_frame.next("connection_established")
        await by_frame.send(type="ping")
        await by_frame.next("pong")

    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{url}?token={_expired()}")
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["code"] == "token_expired"

    for first_frame in (
        {"type": "auth", "token": _forged()},
        {"type": "query", "text": "no token at all"},
    ):
        async with await WsClient.connect(url, greet=False) as bad:
            await bad.send(**first_frame)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await bad.next()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_resume_needs_the_same_token_subject(auth_server: ThreadServer) -> None:
    url = auth_server.ws_url + "/ws"
    alice = await WsClient.connect(f"{url}?token={_token('alice')}")
    await alice.close()
    async with await WsClient.connect(f"{url}?token={_token('mallory')}") as mallory:
        await mallory.send(type="resume", client_id=alice.client_id, last_seq=0)
        assert (await mallory.next("error"))["code"] == "resume_forbidden"
    async with await WsClient.connect(f"{url}?token={_token('alice')}") as again:
        await again.send(type="resume", client_id=alice.client_id, last_seq=alice.last_seq)
        assert (await again.next("resumed"))["client_id"] == alice.client_id


async def test_jwt_over_socketio(auth_server: ThreadServer) -> None:
    good = socketio.AsyncClient(reconnection=False)
    await good.connect(auth_server.url, auth={"token": _token()}, transports=["websocket"])
    assert good.connected
    await good.disconnect()
    for auth in ({"token": _expired()}, None):
        bad = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await bad.connect(auth_server.url, auth=auth, transports=["polling"])


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_foreign_origin_is_refused_on_ws_and_socketio(transport: str) -> None:
    async with ThreadServer(stage="full") as server:
        evil = {"Origin": "https://evil.example"}
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(server.ws_url + "/ws", additional_headers=evil)
        assert refused.value.response.status_code == 403
        async with httpx.AsyncClient(base_url=server.url) as http:
            poll = await http.get("/socket.io/?EIO=4&transport=polling", headers=evil)
            assert poll.status_code == 403
        sio = socketio.AsyncClient(reconnection=False)
        # (python-engineio's polling client trips over its own reset reading a refusal
        # body and raises aiohttp's RuntimeError; the raw 403 is checked above.)
        with pytest.raises((socketio.exceptions.ConnectionError, RuntimeError)):
            await sio.connect(server.url, headers=evil, transports=[transport])
        # Same origin and (with an empty allow-list) loopback pages are welcome.
        for origin in (server.url, "http://localhost:5173"):
            ok = await WsClient.connect(
                server.ws_url + "/ws", additional_headers={"Origin": origin}
            )
            await ok.close()
        page = socketio.AsyncClient(reconnection=False)
        await page.connect(server.url, headers={"Origin": server.url}, transports=[transport])
        await page.disconnect()


async def test_the_origin_allow_list_replaces_the_loopback_default() -> None:
    allowed = "https://genie.example"
    async with ThreadServer(stage="full", allowed_origins=[allowed]) as server:
        url = server.ws_url + "/ws"
        ok = await WsClient.connect(url, additional_headers={"Origin": allowed})
        await ok.close()
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(url, additional_headers={"Origin": "http://localhost:5173"})


async def test_rate_limits_on_queries_and_audio() -> None:
    limits = {
        "rate_limit_queries": 6,  # one every 10 s: nothing refills during the test
        "rate_limit_queries_burst": 2,
        "rate_limit_audio": 6,
        "rate_limit_audio_burst": 2,
    }
    async with ThreadServer(stage="full", **limits) as server:
        async with await WsClient.connect(server.ws_url + "/ws") as ws:
            for n in range(3):
                await ws.send(type="query", text=f"what is {n} plus 1")
            error = await ws.next("error")
            assert error["code"] == "rate_limited" and error["retry_after"] > 0
            assert len(ws.of("queued")) <= 2
            await ws.send(type="ping")
            await ws.next("pong")  # refused, not disconnected
        async with httpx.AsyncClient(base_url=server.url) as http:
            pushes = [await http.get("/push", params={"question": "hi"}) for _ in range(3)]
            assert [r.status_code for r in pushes] == [200, 200, 429]
            assert int(pushes[-1].headers["retry-after"]) >= 1
            audio = [await http.get("/get_tts_audio", params={"tts_text": "hi"}) for _ in range(3)]
            assert [r.status_code for r in audio] == [200, 200, 429]
            metrics = (await http.get("/metrics")).text
        assert 'genie_rate_limited_total{kind="query"} 2.0' in metrics
        assert 'genie_rate_limited_total{kind="audio"} 1.0' in metrics


async def test_metrics_in_prometheus_text() -> None:
    async with ThreadServer(stage="full") as server, httpx.AsyncClient(base_url=server.url) as http:
        async with await WsClient.connect(server.ws_url + "/ws") as ws:
            await ws.send(type="query", text="what is 8 plus 8")
            await ws.count("audio_update", 2)
            await http.get("/api/get-audio", params={"msg": "Metrics, please."})
            response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        for line in (
            'genie_connections{transport="ws"} 1.0',
            'genie_connections{transport="socketio"} 0.0',
            'genie_jobs{state="done"} 1.0',
            "genie_queue_depth 0.0",
        ):
            assert line in text, line
        for name in (
            "genie_ws_frames_sent_total",
            "genie_ws_frames_dropped_total",
            "genie_audio_streams_open",
            "genie_tts_first_byte_seconds_bucket",
            "genie_tts_failures_total",
            "process_cpu_seconds_total",
        ):
            assert name in text, name
        sent = next(line for line in text.splitlines() if line.startswith("genie_ws_frames_sent"))
        assert float(sent.split()[-1]) >= len(ws.seen) >= 5  # greeting, queued, counts, 2 audio


async def test_expired_tokens_are_told_apart_from_bad_ones() -> None:
    # The verifier decodes with a fixed algorithm list: an unsigned token never passes.
    unsigned = jwt.encode({"sub": "x", "exp": 9999999999}, key=None, algorithm="none")
    async with (
        ThreadServer(stage="full", jwt_secret=SECRET) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        response = await http.get("/get_queue/done", params={"token": unsigned})
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"
