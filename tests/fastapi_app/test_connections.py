"""Full stage, connection manager: slow clients, heartbeat, cancel on disconnect, resume."""

from __future__ import annotations

import asyncio
import json
import socket

import anyio
import httpx
import pytest
import websockets

from tests.audio import duration
from tests.fakes.elevenlabs_server import FakeElevenLabs
from tests.fastapi_app.helpers import WsClient
from tests.servers import ThreadServer

pytestmark = pytest.mark.anyio

SLEEPY = "tests.fastapi_app.handlers:sleepy"


async def _stalled_client(server: ThreadServer) -> tuple[websockets.ClientConnection, str]:
    """A client that stops reading: a tiny receive buffer and a one-frame queue."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    conn = await websockets.connect(server.ws_url + "/ws", sock=sock, max_queue=1)
    hello = json.loads(await conn.recv())
    return conn, hello["client_id"]


async def test_a_stalled_client_is_closed_1013_and_never_holds_up_the_others() -> None:
    async with ThreadServer(stage="full", ws_send_queue_size=16) as server:
        rt = server.runtime
        async with await WsClient.connect(server.ws_url + "/ws") as healthy:
            stalled, stalled_id = await _stalled_client(server)
            big = "é" * 8000  # ~48 KB frames for the stalled client alone

            async def flood() -> int:
                for value in range(300):
                    await rt.hub.emit_audio(big, stalled_id)
                    await rt.hub.emit_event("todo_update", {"value": value})
                    await asyncio.sleep(0.001)
                return rt.connections.stats.slow_closed

            assert await anyio.to_thread.run_sync(server.call, flood) == 1
            # The healthy client kept up while the other stalled: its counts rose in order
            # to the last one (counts are state: a newer one may replace one still waiting).
            values = [(await healthy.next("todo_update"))["value"]]
            while values[-1] != 299:
                values.append((await healthy.next("todo_update"))["value"])
            assert values == sorted(set(values))
            # Nothing more is queued for it: its socket only waits to send the close frame.
            outbox = rt.connections.clients[stalled_id].outbox
            assert outbox.close_request[0] == 1013 and len(outbox) == 0
            # Once the stalled client reads again it finds the close frame after its backlog.
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(stalled.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            await healthy.send(type="ping")
            await healthy.next("pong")


async def test_a_client_that_stalls_for_a_while_gets_every_answer_and_the_latest_counts() -> None:
    async with ThreadServer(stage="full", ws_send_queue_size=1000) as server:
        rt = server.runtime
        stalled, stalled_id = await _stalled_client(server)
        big = "é" * 8000

        async def flood() -> int:
            for value in range(150):
                await rt.hub.emit_audio(big, stalled_id)
                await rt.hub.emit_event("todo_update", {"value": value})
                await asyncio.sleep(0.001)
            return len(rt.connections.clients[stalled_id].outbox)

        assert await anyio.to_thread.run_sync(server.call, flood) > 0  # a real backlog
        got: list[dict] = []
        while not got or got[-1].get("value") != 149:
            got.append(json.loads(await asyncio.wait_for(stalled.recv(), 10)))
        # Every per-client frame, in order; counts are state: the backlog kept only the
        # latest of those that piled up, so their values only grow and end at the last.
        assert sum(f["type"] == "audio_update" for f in got) == 150
        seqs = [f["seq"] for f in got]
        assert seqs == sorted(set(seqs)) and seqs[-1] == 300
        counts = [f["value"] for f in got if f["type"] == "todo_update"]
        assert counts == sorted(set(counts)) and counts[-1] == 149 and len(counts) < 150
        assert rt.connections.stats.conflated == 150 - len(counts)
        assert rt.connections.stats.slow_closed == 0
        await stalled.close()


async def test_a_silent_client_is_dropped_by_the_heartbeat() -> None:
    settings = {"ws_heartbeat_interval": 0.1, "ws_heartbeat_timeout": 0.5}
    async with ThreadServer(stage="full", **settings) as server:
        silent = await WsClient.connect(server.ws_url + "/ws")
        async with await WsClient.connect(server.ws_url + "/ws") as lively:

            async def answer_pings() -> None:
                while True:
                    await lively.next("ping")
                    await lively.send(type="pong")

            async with anyio.create_task_group() as group:
                group.start_soon(answer_pings)
                # The silent client never speaks: closed 1011 after the timeout.
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await silent.next()
                await anyio.sleep(0.8)  # the lively one outlives the timeout again
                group.cancel_scope.cancel()
            await lively.send(type="ping")
            await lively.next("pong")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        assert len(silent.of("ping")) >= 2
        assert server.runtime.connections.heartbeat_closed == 1


async def test_disconnect_cancels_queued_jobs_and_open_audio_streams() -> None:
    text = "A sentence long enough to stream in several slow chunks from the fake."
    async with FakeElevenLabs(chunk_delay=0.3) as fake:
        settings = {
            "job_handler": SLEEPY,
            "ws_resume_window": 0.3,
            "tts_providers": ["elevenlabs"],
            "elevenlabs_base_url": fake.url,
            "elevenlabs_api_key": fake.api_key,
            "tts_cache_entries": 0,
        }
        async with ThreadServer(stage="full", **settings) as server:
            http = httpx.AsyncClient(base_url=server.url, timeout=20)
            whole = await http.get("/api/get-audio", params={"msg": text})
            full_length = duration(whole.content)

            leaver = await WsClient.connect(server.ws_url + "/ws")
            await leaver.send(type="query", text="sleep 1")
            for n in (1, 2):
                await leaver.send(type="query", text=f"what is {n} plus {n}")
            queued = [f["id_hash"] for f in await leaver.count("queued", 3)]
            params = {"msg": text, "client_id": leaver.client_id}
            async with http.stream("GET", "/api/get-audio", params=params) as stream:
                chunks = stream.aiter_bytes()
                received = await anext(chunks)
                await leaver.close()
                received += b"".join([chunk async for chunk in chunks])

            assert duration(received) < full_length * 0.75  # cut short, still decodable
            assert server.runtime.streams.cancelled_total == 1
            with anyio.fail_after(10):
                while len((await http.get("/get_queue/dead")).json()["dead_jobs"]) < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            dead = {job.id_hash: job for job in server.runtime.queues.queue("dead").jobs()}
            assert set(queued[1:]) == set(dead) and all(
                j.error == "cancelled" for j in dead.values()
            )
            # The job that was already running finishes normally.
            await anyio.to_thread.run_sync(server.call, server.runtime.queues.wait_idle)
            assert server.runtime.queues.get(queued[0]).state == "done"
            await http.aclose()


async def test_resume_after_reconnect_loses_no_frame() -> None:
    settings = {"job_handler": SLEEPY, "ws_resume_window": 10}
    async with (
        ThreadServer(stage="full", **settings) as server,
        await WsClient.connect(server.ws_url + "/ws") as other,
    ):
        first = await WsClient.connect(server.ws_url + "/ws")
        await first.send(type="query", text="sleep 0.5")
        await first.next("queued")
        await first.close()  # gone mid-job: the answer and other frames pile up
        await other.send(type="query", text="what is 4 plus 4")
        await other.count("audio_update", 2)
        await anyio.sleep(0.8)  # the sleepy job finishes while nobody is connected

        second = await WsClient.connect(server.ws_url + "/ws")
        await second.send(type="resume", client_id=first.client_id, last_seq=first.last_seq)
        resumed = await second.next("resumed")
        assert resumed["client_id"] == first.client_id and resumed["complete"] is True
        assert resumed["replayed"] > 0
        # Its jobs keep reporting to it on the new socket.
        await other.send(type="query", text="what is 5 plus 5")
        await second.next("done_update")
        await second.send(type="ping")
        await second.next("pong")
        await second.close()

    data = [f for f in first.seen + second.seen if f["type"] not in _CONTROL]
    seqs = [f["seq"] for f in data]
    # Every frame once, in order; a gap is a count that a newer one replaced before it
    # was written (counts are state), never a per-client frame.
    assert seqs == sorted(set(seqs)) and seqs[0] == 1
    answers = [f["audioURL"] for f in data if f["type"] == "audio_update"]
    assert [f["type"] for f in data].count("queued") == 1
    assert len(answers) == 2 and "slept" in answers[-1]  # "hmm...", then the answer


async def test_resume_past_the_replay_buffer_says_it_is_incomplete() -> None:
    async with (
        ThreadServer(stage="full", ws_resume_frames=3, ws_resume_window=10) as server,
        await WsClient.connect(server.ws_url + "/ws") as other,
    ):
        away = await WsClient.connect(server.ws_url + "/ws")
        await away.close()
        await other.send(type="query", text="what is 3 plus 3")  # 6+ broadcasts meanwhile
        await other.count("audio_update", 2)
        back = await WsClient.connect(server.ws_url + "/ws")
        await back.send(type="resume", client_id=away.client_id, last_seq=away.last_seq)
        resumed = await back.next("resumed")
        assert resumed["complete"] is False and resumed["replayed"] == 3
        replayed = [f["seq"] for f in back.seen if f["type"] not in _CONTROL]
        assert replayed == sorted(replayed) and len(replayed) == 3
        await back.close()


async def test_resume_is_refused_for_an_unknown_session_or_with_jobs_pending() -> None:
    async with (
        ThreadServer(stage="full", job_handler=SLEEPY) as server,
        await WsClient.connect(server.ws_url + "/ws") as ws,
    ):
        await ws.send(type="resume", client_id="no-such-client", last_seq=3)
        assert (await ws.next("error"))["code"] == "resume_failed"
        async with await WsClient.connect(server.ws_url + "/ws") as late:
            await late.send(type="query", text="sleep 1")
            await late.next("queued")
            # Resuming now would orphan the pending job of this new session.
            await late.send(type="resume", client_id=ws.client_id, last_seq=0)
            assert (await late.next("error"))["code"] == "resume_too_late"
        await ws.send(type="ping")
        await ws.next("pong")  # the first session is untouched


_CONTROL = ("connection_established", "resumed", "ping", "pong", "error")
