"""BroadcastManager against python-socketio's own AsyncManager, over a real server.

Every behaviour test runs twice (``default`` and ``broadcast`` manager) against a real
python-socketio AsyncServer under uvicorn on a free loopback port, with real
python-socketio clients on both transports and raw Engine.IO clients that check the
exact frames on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import engineio
import engineio.async_socket
import engineio.exceptions
import httpx
import pytest
import socketio
import uvicorn
import websockets
from engineio import packet as eio_packet

from fastapi_app.sockets.sio_manager import BroadcastManager, LeanPoll

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

MANAGERS: dict[str, Callable[[], socketio.AsyncManager]] = {
    "default": socketio.AsyncManager,
    "broadcast": BroadcastManager,
}
WAIT = 10.0  # generous upper bound for one event to arrive; a failure, never a speed test


@dataclass
class Server:
    sio: socketio.AsyncServer
    url: str
    manager: str


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn in this event loop on a free 127.0.0.1 port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # The app's WebSocket protocol (fastapi_app.server), so direct frames are in play.
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surface a failed start
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture(params=sorted(MANAGERS))
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Server]:
    sio = socketio.AsyncServer(
        async_mode="asgi", client_manager=MANAGERS[request.param](), namespaces="*"
    )

    @sio.on("*", namespace="*")
    async def any_event(event: str, namespace: str, sid: str, *args: Any) -> None:
        return None  # accept every namespace; clients only listen in these tests

    async with serve(socketio.ASGIApp(sio)) as url:
        yield Server(sio, url, request.param)
    await sio.shutdown()


class Listener:
    """A python-socketio client that records every event it gets, in order."""

    def __init__(self, transport: str, namespace: str = "/") -> None:
        self.transport = transport
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.client.on("*", self._record, namespace=namespace)

    async def _record(self, event: str, *args: Any) -> None:
        await self.events.put((event, *args))

    async def connect(self, url: str) -> Listener:
        await self.client.connect(
            url, transports=[self.transport], namespaces=[self.namespace], wait_timeout=WAIT
        )
        return self

    @property
    def sid(self) -> str:
        sid = self.client.get_sid(self.namespace)
        assert sid is not None
        return sid

    async def next(self) -> tuple[Any, ...]:
        return await asyncio.wait_for(self.events.get(), WAIT)

    async def close(self, sio: socketio.AsyncServer) -> None:
        # The server hangs up first: a polling client's own disconnect would otherwise
        # wait for its pending long-poll GET, which the server only ends at ping timeout.
        if self.client.connected:
            await sio.disconnect(self.sid, namespace=self.namespace)
        await self.client.disconnect()


@asynccontextmanager
async def listeners(
    server: Server,
    transports: tuple[str, ...] = ("websocket", "polling", "websocket", "polling"),
    namespace: str = "/",
) -> AsyncIterator[list[Listener]]:
    clients = [Listener(t, namespace) for t in transports]
    try:
        await asyncio.gather(*(c.connect(server.url) for c in clients))
        yield clients
    finally:
        await asyncio.gather(*(c.close(server.sio) for c in clients))


async def test_broadcast_reaches_every_client_on_both_transports(server: Server) -> None:
    async with listeners(server) as clients:
        await server.sio.emit("todo_update", {"value": 3})
        await server.sio.emit("time_update", {"date": "Mon 1 Jan"})
        for client in clients:
            assert await client.next() == ("todo_update", {"value": 3})
            assert await client.next() == ("time_update", {"date": "Mon 1 Jan"})


async def test_many_emits_keep_their_order(server: Server) -> None:
    # 12: python-engineio's client refuses long-poll payloads of more than 16 packets.
    async with listeners(server, ("websocket", "polling")) as clients:
        for n in range(12):
            await server.sio.emit("n", n)
        for client in clients:
            assert [(await client.next())[1] for _ in range(12)] == list(range(12))


async def test_room_emit_reaches_only_members(server: Server) -> None:
    async with listeners(server) as clients:
        members, others = clients[:2], clients[2:]
        for member in members:
            await server.sio.enter_room(member.sid, "legacy")
        await server.sio.emit("audio_update", {"audioURL": "/a"}, room="legacy")
        await server.sio.emit("marker", None)
        for member in members:
            assert await member.next() == ("audio_update", {"audioURL": "/a"})
            assert await member.next() == ("marker",)
        for other in others:
            assert await other.next() == ("marker",)  # nothing arrived before the marker


async def test_skip_sid_single_and_list(server: Server) -> None:
    async with listeners(server) as clients:
        first, second, *rest = clients
        await server.sio.emit("one", 1, skip_sid=first.sid)
        await server.sio.emit("two", 2, skip_sid=[first.sid, second.sid])
        await server.sio.emit("marker", None)
        assert await first.next() == ("marker",)
        assert [await second.next() for _ in range(2)] == [("one", 1), ("marker",)]
        for client in rest:
            assert [await client.next() for _ in range(3)] == [("one", 1), ("two", 2), ("marker",)]


async def test_to_sid_reaches_only_that_client(server: Server) -> None:
    async with listeners(server) as clients:
        target = clients[1]
        await server.sio.emit("audio_update", {"audioURL": "/mine"}, to=target.sid)
        await server.sio.emit("marker", None)
        assert await target.next() == ("audio_update", {"audioURL": "/mine"})
        for client in clients:
            assert await client.next() == ("marker",)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_binary_and_multi_argument_payloads(server: Server, transport: str) -> None:
    blob = bytes(range(256)) * 4
    async with listeners(server, (transport,) * 3) as clients:
        await server.sio.emit("chunk", {"n": 1, "audio": blob, "parts": [b"a", b"bc"]})
        await server.sio.emit("pair", ("text", b"\x00\xff"))
        for client in clients:
            assert await client.next() == ("chunk", {"n": 1, "audio": blob, "parts": [b"a", b"bc"]})
            assert await client.next() == ("pair", "text", b"\x00\xff")


async def test_binary_broadcast_to_mixed_transports(server: Server) -> None:
    """One binary event to websocket and polling clients at once.

    python-socketio's own manager shares one Engine.IO packet between recipients and
    Engine.IO caches its first encoding (raw bytes or base64 text), so mixing transports
    breaks it; BroadcastManager gives each socket its own binary packet.
    """
    if server.manager == "default":
        pytest.xfail("python-socketio 5.18.1 shares binary packets across transports")
    async with listeners(server, ("websocket", "polling", "polling", "websocket")) as clients:
        await server.sio.emit("chunk", b"\x01\x02\x03")
        await server.sio.emit("marker", None)
        for client in clients:
            assert await client.next() == ("chunk", b"\x01\x02\x03")
            assert await client.next() == ("marker",)


async def test_client_past_its_ping_timeout_is_closed_not_sent_to(server: Server) -> None:
    async with listeners(server, ("websocket", "polling", "websocket")) as clients:
        stale, *alive = clients
        eio_sid = server.sio.manager.eio_sid_from_sid(stale.sid, "/")
        # As if its last PING went unanswered for longer than ping_timeout.
        server.sio.eio.sockets[eio_sid].last_ping = time.time() - 10 * server.sio.eio.ping_timeout
        await server.sio.emit("todo_update", {"value": 2})
        with anyio.fail_after(5):  # closed when the fan-out pass reaches it
            while server.sio.manager.is_connected(stale.sid, "/"):  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        assert eio_sid not in server.sio.eio.sockets or server.sio.eio.sockets[eio_sid].closed
        for client in alive:
            assert await client.next() == ("todo_update", {"value": 2})


async def test_custom_namespace(server: Server) -> None:
    async with listeners(server, ("websocket", "polling"), namespace="/chat") as clients:
        await server.sio.emit("hello", {"x": 1}, namespace="/chat")
        for client in clients:
            assert await client.next() == ("hello", {"x": 1})


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_callbacks_get_the_client_answer(server: Server, transport: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    client.on("ask", lambda data: {"echo": data, "ok": True})
    await client.connect(server.url, transports=[transport], wait_timeout=WAIT)
    try:
        sid = client.get_sid()
        answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await server.sio.emit("ask", "ping", to=sid, callback=answered.set_result)
        assert await asyncio.wait_for(answered, WAIT) == {"echo": "ping", "ok": True}
        assert await server.sio.call("ask", [1, 2], to=sid, timeout=WAIT) == {
            "echo": [1, 2],
            "ok": True,
        }
    finally:
        await server.sio.disconnect(sid)
        await client.disconnect()


# --- exact frames on the wire -------------------------------------------------------------


async def _raw_ws(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
        compression=None,
    )
    assert (await ws.recv()).startswith("0{")
    await ws.send("40")
    assert (await ws.recv()).startswith('40{"sid":')
    return ws


async def test_websocket_frames_are_exactly_socketio_v5(server: Server) -> None:
    ws = await _raw_ws(server.url)
    try:
        await server.sio.emit("audio_update", {"audioURL": "/api/get-audio?msg=h%C3%A9"})
        await server.sio.emit("dé", ("x", 2))
        await server.sio.emit("bin", {"b": b"\x00\x01"})
        received = [await asyncio.wait_for(ws.recv(), WAIT) for _ in range(4)]
    finally:
        await ws.close()
    assert received == [
        '42["audio_update",{"audioURL":"/api/get-audio?msg=h%C3%A9"}]',
        '42["d\\u00e9","x",2]',
        '451-["bin",{"b":{"_placeholder":true,"num":0}}]',
        b"\x00\x01",
    ]


async def test_polling_payload_is_exactly_engineio_v4(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        opened = (await http.get("/socket.io/", params={"EIO": 4, "transport": "polling"})).text
        params = {"EIO": 4, "transport": "polling", "sid": json.loads(opened[1:])["sid"]}
        await http.post("/socket.io/", params=params, content="40")
        assert (await http.get("/socket.io/", params=params)).text.startswith('40{"sid":')
        await server.sio.emit("todo_update", {"value": 1})
        await server.sio.emit("bin", b"\xff")
        body = (await http.get("/socket.io/", params=params)).text
    blob = "b" + base64.b64encode(b"\xff").decode()
    assert body.split("\x1e") == [
        '42["todo_update",{"value":1}]',
        '451-["bin",{"_placeholder":true,"num":0}]',
        blob,
    ]


async def test_a_websocket_carries_only_the_probe_until_the_upgrade(server: Server) -> None:
    """While a client upgrades, its long-poll is still the transport: an event emitted
    then goes out on the poll, and the new websocket sees nothing before ``3probe``."""
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as http:
        opened = (await http.get("/socket.io/", params={"EIO": 4, "transport": "polling"})).text
        sid = json.loads(opened[1:])["sid"]
        params = {"EIO": 4, "transport": "polling", "sid": sid}
        await http.post("/socket.io/", params=params, content="40")
        assert (await http.get("/socket.io/", params=params)).text.startswith('40{"sid":')
        long_poll = asyncio.create_task(http.get("/socket.io/", params=params))
        ws_url = server.url.replace("http://", "ws://")
        ws = await websockets.connect(
            f"{ws_url}/socket.io/?EIO=4&transport=websocket&sid={sid}", compression=None
        )
        try:
            socket = server.sio.eio.sockets[sid]
            with anyio.fail_after(WAIT):  # the server holds the poll and awaits the probe
                while not socket.upgrading or (  # noqa: ASYNC110 - no event to wait on
                    isinstance(socket.poll, LeanPoll) and socket.poll.parked_task is None
                ):
                    await asyncio.sleep(0.01)
            await server.sio.emit("todo_update", {"value": 1})
            assert (await asyncio.wait_for(long_poll, WAIT)).text == '42["todo_update",{"value":1}]'
            await ws.send("2probe")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "3probe"
            await ws.send("5")
            await server.sio.emit("todo_update", {"value": 2})
            frames = [await asyncio.wait_for(ws.recv(), WAIT)]
            while frames[-1] == "6":  # the noop that ended the poll, if not sent on it
                frames.append(await asyncio.wait_for(ws.recv(), WAIT))
            assert frames[-1] == '42["todo_update",{"value":2}]'
        finally:
            await ws.close()


# --- the point of the class ---------------------------------------------------------------


async def test_broadcast_creates_no_task_per_recipient(server: Server) -> None:
    loop = asyncio.get_running_loop()
    created = 0
    previous = loop.get_task_factory()

    def counting_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        nonlocal created
        created += 1
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async with listeners(server, ("websocket",) * 6) as clients:
        loop.set_task_factory(counting_factory)
        try:
            await server.sio.emit("todo_update", {"value": 1})
        finally:
            loop.set_task_factory(previous)
        expected = 0 if server.manager == "broadcast" else len(clients)
        assert created == expected
        for client in clients:
            assert await client.next() == ("todo_update", {"value": 1})


# --- LeanPoll against engineio's own AsyncSocket.poll ---------------------------------------


def _eio_socket(timeout: float = 5.0) -> Any:
    server = engineio.AsyncServer(
        async_mode="asgi", ping_interval=timeout / 2, ping_timeout=timeout / 2
    )
    return engineio.async_socket.AsyncSocket(server, "sid")


def _pkt(data: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, data)


async def _drain(poll: Callable[[], Any], socket: Any, calls: int) -> list[list[Any]]:
    got = []
    for _ in range(calls):
        if socket.queue.empty():
            break
        got.append([p.data for p in await poll()])
    await asyncio.wait_for(socket.queue.join(), WAIT)  # every get was task_done'd
    return got


@pytest.mark.parametrize(
    "queued",
    [["a"], ["a", "b", "c"], ["a", None, "b"], [None], ["a", None, None, "b"]],
    ids=["one", "batch", "end-marker-mid", "end-marker", "two-markers"],
)
async def test_lean_poll_returns_what_engineio_poll_returns(queued: list[str | None]) -> None:
    results = []
    for make_poll in (lambda s: s.poll, LeanPoll):
        socket = _eio_socket()
        for item in queued:
            socket.queue.put_nowait(None if item is None else _pkt(item))
        results.append(await _drain(make_poll(socket), socket, len(queued)))
    upstream, lean = results
    assert lean == upstream


async def test_lean_poll_waits_for_a_packet() -> None:
    socket = _eio_socket()
    poll = asyncio.create_task(LeanPoll(socket)())
    await asyncio.sleep(0)
    assert not poll.done()
    socket.queue.put_nowait(_pkt("late"))
    assert [p.data for p in await asyncio.wait_for(poll, WAIT)] == ["late"]


@pytest.mark.parametrize("lean", [False, True], ids=["upstream", "lean"])
async def test_idle_poll_times_out_with_queue_empty(lean: bool) -> None:
    socket = _eio_socket(timeout=0.1)
    poll = LeanPoll(socket) if lean else socket.poll
    with pytest.raises(engineio.exceptions.QueueEmpty):
        await asyncio.wait_for(poll(), WAIT)


@pytest.mark.parametrize("lean", [False, True], ids=["upstream", "lean"])
async def test_cancelled_poll_raises_queue_empty(lean: bool) -> None:
    socket = _eio_socket()
    poll = LeanPoll(socket) if lean else socket.poll
    seen: list[BaseException] = []

    async def writer() -> None:
        try:
            await poll()
        except BaseException as exc:
            seen.append(exc)

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [type(e) for e in seen] == [engineio.exceptions.QueueEmpty]


async def test_lean_poll_timeout_counts_from_the_start_of_each_wait() -> None:
    # Waits of 0.05 s, back to back for longer than the 0.5 s timeout: the watchdog armed
    # by the first wait must re-arm, not fire.
    socket = _eio_socket(timeout=0.5)
    poll = LeanPoll(socket)
    loop = asyncio.get_running_loop()
    for n in range(15):
        loop.call_later(0.05, socket.queue.put_nowait, _pkt(str(n)))
        assert [p.data for p in await poll()] == [str(n)]


async def test_parked_websocket_writers_get_frames_directly_in_order(server: Server) -> None:
    """Text broadcasts skip a parked writer's queue; binary ones still go through it.
    Interleaved without pauses, every client still sees them in emit order."""
    if server.manager == "default":
        pytest.skip("only BroadcastManager writes frames directly")
    manager = server.sio.manager
    async with listeners(server, ("websocket", "polling", "websocket")) as clients:
        eio_sids = {manager.eio_sid_from_sid(c.sid, "/"): c.transport for c in clients}
        direct = {sid for sid, transport in eio_sids.items() if transport == "websocket"}
        assert set(manager.direct) == direct  # polling sockets have no transport of their own
        for n in range(12):  # 12: the long-poll client's payload limit, as above
            await server.sio.emit("n", n if n % 3 else bytes([n]))
        for client in clients:
            got = [(await client.next())[1] for _ in range(12)]
            assert got == [n if n % 3 else bytes([n]) for n in range(12)], client.transport
    with anyio.fail_after(WAIT):  # the server's handlers end just after the clients leave
        while manager.direct:  # noqa: ASYNC110 - a plain dict, nothing to wait on
            await asyncio.sleep(0.01)


async def test_broadcast_manager_installs_lean_poll(server: Server) -> None:
    async with listeners(server, ("websocket", "polling")) as clients:
        for client in clients:
            eio_sid = server.sio.manager.eio_sid_from_sid(client.sid, "/")
            installed = isinstance(server.sio.eio.sockets[eio_sid].poll, LeanPoll)
            assert installed is (server.manager == "broadcast")
