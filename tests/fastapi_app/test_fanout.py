"""Broadcasts taken lazily (fastapi_app/sockets/fanout.py): a broadcast is logged once,
each socket takes it in the fan-out pass or just before a frame of its own, and the log
empties once everyone has taken it. Real servers, real clients, on both transports."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from fastapi_app.sockets.fanout import FanOut
from tests.fastapi_app.helpers import SioListener, WsClient
from tests.servers import ThreadServer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

HOLD = 0.3  # a long fan-out wait, so a test can act before the pass


def hold(fanout: FanOut) -> None:
    fanout.delay, fanout.hold_above = HOLD, 0  # held even for a handful of sockets


async def test_a_broadcast_is_logged_once_and_taken_by_the_pass() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        clients = [await WsClient.connect(server.ws_url + "/ws") for _ in range(3)]

        def broadcast() -> tuple[int, list[int]]:
            conns = rt.connections
            hold(conns.fanout)
            conns.broadcast({"type": "todo_update", "value": 7})
            # Nothing was handed to any client yet: one entry, nobody numbered it.
            return len(conns.fanout.entries), [len(c.outbox) for c in conns.live.values()]

        logged, waiting = await anyio.to_thread.run_sync(server.call, broadcast)
        assert logged == 1 and waiting == [0, 0, 0]
        for client in clients:
            assert (await client.next("todo_update"))["value"] == 7
        entries = await anyio.to_thread.run_sync(server.call, lambda: rt.connections.fanout.entries)
        assert entries == []  # everyone took it: the log is empty again
        for client in clients:
            await client.close()


async def test_a_frame_of_its_own_comes_after_the_broadcasts_before_it() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        asker = await WsClient.connect(server.ws_url + "/ws")
        other = await WsClient.connect(server.ws_url + "/ws")

        async def go() -> None:
            hold(rt.connections.fanout)
            await rt.hub.emit_event("todo_update", {"value": 1})
            await rt.hub.emit_audio("Answer.", asker.client_id)  # takes todo 1 along
            await rt.hub.emit_event("todo_update", {"value": 2})  # the pass brings it

        await anyio.to_thread.run_sync(server.call, go)
        await asker.count("todo_update", 2)
        frames = [f for f in asker.seen if f["type"] in ("todo_update", "audio_update")]
        assert [(f["type"], f.get("value")) for f in frames] == [
            ("todo_update", 1),
            ("audio_update", None),
            ("todo_update", 2),
        ]
        assert [f["seq"] for f in frames] == [1, 2, 3]
        # The other socket had no frame of its own: both counts waited for the pass,
        # where the newer replaced the older (same name), with the numbers both took.
        latest = await other.next("todo_update")
        assert (latest["value"], latest["seq"]) == (2, 2)
        await asker.close()
        await other.close()


async def test_a_socket_that_joins_after_a_broadcast_does_not_get_it() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        early = await WsClient.connect(server.ws_url + "/ws")

        def hold_and_broadcast() -> None:
            hold(rt.connections.fanout)
            rt.connections.broadcast({"type": "run_update", "value": 1})

        await anyio.to_thread.run_sync(server.call, hold_and_broadcast)
        late = await WsClient.connect(server.ws_url + "/ws")  # before the pass
        assert (await early.next("run_update"))["value"] == 1

        def broadcast_again() -> None:
            rt.connections.broadcast({"type": "done_update", "value": 5})

        await anyio.to_thread.run_sync(server.call, broadcast_again)
        assert (await late.next("done_update"))["value"] == 5
        assert late.of("run_update") == []  # sent before it joined: not its frame
        await early.close()
        await late.close()


async def test_broadcasts_while_away_are_numbered_for_the_resume() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        client = await WsClient.connect(server.ws_url + "/ws")
        await client.close()

        async def while_away() -> None:
            while rt.connections.live:  # noqa: ASYNC110 - a plain dict, nothing to wait on
                await asyncio.sleep(0.01)
            for value in range(3):  # no frame of its own: only the pass numbers these
                rt.connections.broadcast({"type": "todo_update", "value": value})
            while rt.connections.fanout.entries:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

        await anyio.to_thread.run_sync(server.call, while_away)
        back = await WsClient.connect(server.ws_url + "/ws")
        await back.send(type="resume", client_id=client.client_id, last_seq=0)
        resumed = await back.next("resumed")
        assert (resumed["replayed"], resumed["complete"]) == (3, True)
        replay = back.of("todo_update")
        assert [(f["seq"], f["value"]) for f in replay] == [(1, 0), (2, 1), (3, 2)]
        await back.close()


async def test_socketio_emits_to_one_socket_keep_their_place_among_namespace_emits() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        sio = rt.legacy.sio
        a, b = SioListener(), SioListener()
        for listener in (a, b):
            await listener.client.connect(server.url, transports=["websocket"])
        a_sid = a.client.get_sid()

        async def go() -> None:
            hold(sio.manager.fanouts["/"])
            await sio.emit("todo_update", {"value": 1})  # namespace-wide: logged
            await sio.emit("probe", {"n": 1}, to=a_sid)  # takes todo 1 along first
            await sio.emit("todo_update", {"value": 2})

        await anyio.to_thread.run_sync(server.call, go)
        await a.wait_for("todo_update", {"value": 2})
        assert a.seen == [("todo_update", {"value": 1}), ("probe", {"n": 1}),
                          ("todo_update", {"value": 2})]  # fmt: skip

        async def with_an_ack() -> None:  # python-socketio's own emit, which queues at once
            await sio.emit("todo_update", {"value": 3})
            await sio.emit("asked", {"n": 2}, to=a_sid, callback=lambda *_: None)

        await anyio.to_thread.run_sync(server.call, with_an_ack)
        await a.wait_for("asked", {"n": 2})
        assert a.seen[-2:] == [("todo_update", {"value": 3}), ("asked", {"n": 2})]
        await b.wait_for("todo_update", {"value": 2})
        assert ("probe", {"n": 1}) not in b.seen

        # A page that connects after an emit, before the pass, does not get it.
        def hold_and_emit() -> None:
            return server.call(lambda: sio.emit("run_update", {"value": 1}))

        await anyio.to_thread.run_sync(hold_and_emit)
        late = SioListener()
        await late.client.connect(server.url, transports=["websocket"])
        await a.wait_for("run_update", {"value": 1})
        await anyio.to_thread.run_sync(server.call, lambda: sio.emit("done_update", {"value": 3}))
        await late.wait_for("done_update", {"value": 3})
        assert [event for event, _ in late.seen] == ["done_update"]
        fanout = sio.manager.fanouts["/"]
        left = await anyio.to_thread.run_sync(
            server.call, lambda: (fanout.entries, len(fanout.members))
        )
        assert left == ([], 3)
        for listener in (a, b, late):
            await listener.client.disconnect()
        with anyio.fail_after(10):  # a page that leaves leaves the log's members too
            while await anyio.to_thread.run_sync(server.call, lambda: len(fanout.members)):  # noqa: ASYNC110
                await asyncio.sleep(0.01)


async def test_a_small_fan_out_goes_out_in_the_next_loop_turns_not_after_the_hold() -> None:
    async with ThreadServer(stage="full") as server:
        rt = server.runtime
        clients = [await WsClient.connect(server.ws_url + "/ws") for _ in range(3)]

        async def turns_until_taken() -> int:
            conns = rt.connections
            conns.broadcast({"type": "todo_update", "value": 1})
            for turn in range(1, 20):  # a few turns of the loop: microseconds, not 5 ms
                await asyncio.sleep(0)
                if not conns.fanout.entries:
                    return turn
            return -1

        assert await anyio.to_thread.run_sync(server.call, turns_until_taken) > 0
        for client in clients:
            assert (await client.next("todo_update"))["value"] == 1
            await client.close()
