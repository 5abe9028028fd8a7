"""The asker hears first: per-client frames before fan-outs, one write per socket and
loop iteration, queue counts conflated while they wait. Real servers, real clients;
orders and counts are checked, never times."""

from __future__ import annotations

import asyncio
import json

import anyio
import pytest
import websockets

from fastapi_app.sockets.direct_frames import DirectFrames
from tests.fastapi_app.helpers import SioListener, WsClient
from tests.servers import ThreadServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

LISTENERS = 1000


class RecordingWriter:
    """A socket's direct writer that notes, in one list for every socket, whose batch
    reached its transport when: the order of writes is the order on the wire."""

    def __init__(self, inner: DirectFrames, name: str, order: list[str]) -> None:
        self.inner, self.name, self.order = inner, name, order

    def write_texts(self, texts: list[str]) -> bool:
        self.order.append(self.name)
        return self.inner.write_texts(texts)


async def test_an_answer_is_written_before_a_fan_out_to_1000_others_finishes() -> None:
    # Every listener comes from 127.0.0.1: lift the per-address connection cap (256).
    async with ThreadServer(stage="full", max_connections_per_ip=0) as server:
        rt = server.runtime
        listeners = [
            await websockets.connect(server.ws_url + "/ws", max_queue=None)
            for _ in range(LISTENERS)
        ]
        asker = await WsClient.connect(server.ws_url + "/ws")  # connected last: fanned out last
        order: list[str] = []

        def record() -> None:
            for client in rt.connections.live.values():
                outbox = client.outbox
                name = "asker" if client.id == asker.client_id else "listener"
                outbox._direct = RecordingWriter(outbox._direct, name, order)

        def done_then_answer() -> None:
            # What a finished job does (queues/running.py): counts to everyone, then the
            # answer to its asker, in one go.
            async def go() -> None:
                await rt.hub.emit_event("done_update", {"value": 1})
                await rt.hub.emit_audio("Four.", asker.client_id)

            return server.call(go)

        await anyio.to_thread.run_sync(server.call, record)
        await anyio.to_thread.run_sync(done_then_answer)
        answer = await asker.next("audio_update")
        for conn in listeners:  # every listener still gets the count
            frame = json.loads(await asyncio.wait_for(conn.recv(), 20))
            while frame["type"] != "done_update":
                frame = json.loads(await asyncio.wait_for(conn.recv(), 20))
            assert frame["value"] == 1
        for conn in listeners:
            await conn.close()
        await asker.close()
    assert "Four" in answer["audioURL"]
    assert len(order) == LISTENERS + 1
    # The asker's socket held a count and its answer: both went out in its first write,
    # before the other 1,000 sockets' counts.
    assert order.index("asker") == 0
    assert [f["type"] for f in asker.seen[-2:]] == ["done_update", "audio_update"]


async def test_a_burst_shares_writes_and_counts_conflate() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        clients = [await WsClient.connect(server.ws_url + "/ws") for _ in range(20)]
        stats = rt.connections.stats

        def counters() -> tuple[int, int, int]:
            # Read on the server's loop: a greeting can reach its client before the write
            # that carried it is counted.
            return server.call(lambda: (stats.sent, stats.writes, stats.conflated))

        before = await anyio.to_thread.run_sync(counters)

        def burst() -> None:
            async def go() -> None:
                for value in range(50):
                    await rt.hub.emit_event("todo_update", {"value": value})
                    await rt.hub.emit_event("run_update", {"value": value % 2})
                    if value % 10 == 0:
                        for client in clients:
                            await rt.hub.emit_audio(f"answer {value}", client.client_id)

            return server.call(go)

        await anyio.to_thread.run_sync(burst)
        for client in clients:
            while [f["value"] for f in client.seen[-2:] if "value" in f] != [49, 1]:
                await client.recv()  # the two counts' latest values come last
            answers = [f["audioURL"] for f in client.of("audio_update")]
            assert [u.split("msg=")[1].split("&")[0] for u in answers] == [
                f"answer%20{v}" for v in range(0, 50, 10)
            ]  # every per-client frame, in order
            seqs = [f["seq"] for f in client.seen if "seq" in f]
            assert seqs == sorted(set(seqs))
        after = await anyio.to_thread.run_sync(counters)
        for client in clients:
            await client.close()
    sent, writes, conflated = (a - b for a, b in zip(after, before, strict=True))
    # One burst in one go. Per socket: the 5 answers, each after the counts emitted
    # before it, in ONE write that carries only the latest of those counts (40 and 0);
    # then the fan-out pass writes the counts emitted after the last answer, conflated
    # to their latest (49 and 1). The other 96 counts never reached the wire.
    assert (sent, writes, conflated) == (20 * (5 + 2 + 2), 20 * 2, 20 * 96)


async def test_resume_after_a_burst_replays_every_frame_it_missed() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        client = await WsClient.connect(server.ws_url + "/ws")
        await client.close()

        def burst_while_away() -> None:
            async def go() -> None:
                while rt.connections.live:  # noqa: ASYNC110 - a plain dict, nothing to wait on
                    await asyncio.sleep(0.01)
                for value in range(30):
                    await rt.hub.emit_event("todo_update", {"value": value})
                    await rt.hub.emit_audio(f"answer {value}", client.client_id)

            return server.call(go)

        await anyio.to_thread.run_sync(burst_while_away)
        back = await WsClient.connect(server.ws_url + "/ws")
        await back.send(type="resume", client_id=client.client_id, last_seq=0)
        resumed = await back.next("resumed")
        assert resumed["replayed"] == 60 and resumed["complete"] is True
        replay = [f for f in back.seen if f["type"] in ("todo_update", "audio_update")]
        assert [f["seq"] for f in replay] == list(range(1, 61))
        await back.close()


async def test_socketio_frames_stay_intact_in_order_and_counts_conflate() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        listeners = [SioListener() for _ in range(5)]
        for listener in listeners:
            await listener.client.connect(server.url, transports=["websocket"])
        sizes = [0, 1, 100, 120, 32_700, 40_000]  # each side of the frame header limits

        def burst() -> None:
            async def go() -> None:
                while len(rt.legacy.sio.manager.direct) < len(listeners):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)  # every writer parked
                for value in range(40):
                    await rt.hub.emit_event("todo_update", {"value": value})
                for n in sizes:
                    await rt.legacy.emit("probe", {"text": "é" * n, "n": n})
                await rt.hub.emit_event("todo_update", {"value": 40})

            return server.call(go)

        await anyio.to_thread.run_sync(burst)
        for listener in listeners:
            with anyio.fail_after(15):
                while listener.last("todo_update") != 40:  # noqa: ASYNC110 - a plain list
                    await asyncio.sleep(0.01)
            probes = listener.values("probe")
            assert [p["n"] for p in probes] == sizes
            assert all(p["text"] == "é" * p["n"] for p in probes)
            counts = [c["value"] for c in listener.values("todo_update")]
            assert counts == sorted(set(counts)) and len(counts) < 41  # conflated, in order
            await listener.client.disconnect()
