"""A python-socketio client manager whose broadcasts cost no asyncio Task per recipient.

python-socketio's :class:`socketio.AsyncManager` already encodes a callback-less emit
once, but then creates one ``asyncio.Task`` per recipient (each awaiting
``eio.send_packet`` -> ``socket.send`` -> ``queue.put``) and waits for all of them. At
1,000 clients that is 1,000 Task creations, schedulings and completions per event, the
bulk of its CPU per delivery.

:class:`BroadcastManager` keeps everything that decides *what* goes on the wire (the
Socket.IO and Engine.IO packet classes, namespaces, rooms, ``skip_sid``) and changes
only *how* the packets are handed over: it puts the already-encoded Engine.IO packets
straight into each recipient socket's outgoing queue with ``put_nowait``. That queue is
the one ``AsyncSocket.send`` feeds and the socket's own writer (websocket) or the next
long-poll (polling) drains, so per-socket ordering, framing and slow-client isolation
are those of python-engineio; the wire is byte-for-byte the same (and, unlike the
parent, one binary broadcast to websocket and polling clients at once works).

Emits with a callback (each recipient needs its own ack id) go to the parent class.

The other half of the cost sits in python-engineio: each socket's writer waits for its
next packet with ``asyncio.wait_for``, i.e. a new Task and a timer per packet sent.
:class:`LeanPoll` is a drop-in for that one method (``AsyncSocket.poll``), installed on
each socket as it connects (``BroadcastManager(lean_poll=False)`` leaves engineio's).

Cheapest of all: an upgraded websocket socket whose writer is parked waiting for its
next packet, with nothing queued, gets text packets written straight to its uvicorn
transport (``fastapi_app.sockets.direct_frames``): no queue hand-off, no writer wake-up, no ASGI
send. They are batched (``fastapi_app.sockets.flusher``: one transport write per socket,
fan-outs in slices), and a queue count that a newer one of the same name replaces before
the batch is written never goes out. To know each socket's transport, the Engine.IO
server's websocket wrapper is swapped for :class:`_TrackedWebSocket`, which records it
for the socket's lifetime.

An emit to a whole namespace (no room, no ``skip_sid``, one text packet: every queue
count and every legacy ``audio_update``) costs the emitter O(1): it is logged once and
each socket takes it when the fan-out pass reaches it (``fastapi_app.sockets.fanout``), so
a job's seven emits no longer stop the job that emits them. Any other emit first hands
each of its recipients what the log holds for it, so per-socket order is emission order.

Profiles and figures: ``python -m bench.ws_broadcast`` (see bench/ws_broadcast.py).

Usage::

    sio = socketio.AsyncServer(async_mode="asgi", client_manager=BroadcastManager())
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import asgi as eio_asgi
from socketio import packet as sio_packet

from fastapi_app.sockets.direct_frames import DirectFrames, direct_writer
from fastapi_app.sockets.fanout import FanOut
from fastapi_app.sockets.flusher import Batch, Flusher
from fleet.link import stop_if_cancelled
from wire.legacy import QUEUE_EVENTS

log = logging.getLogger(__name__)

# The engine.io socket attributes this relies on: ``queue`` (an unbounded asyncio.Queue),
# ``closed``, ``last_ping``, ``upgraded``, ``poll`` and ``sid``; the server's ``sockets``
# dict, ``ping_timeout`` and driver table ``_async``. They are plain attributes in
# python-engineio 4.x (pinned), used the same way by its own code.


class BroadcastManager(socketio.AsyncManager):
    """Drop-in :class:`socketio.AsyncManager` with a Task-free, encode-once emit.

    ``lean_poll`` (default on) also gives each Engine.IO socket the poll of
    :class:`LeanPoll` (see there): the other half of the per-delivery cost. ``direct``
    (default on, needs ``lean_poll``) writes to parked websocket writers directly; pass
    ``fastapi_app.sockets.direct_frames.direct_frames_on(...)`` to honour the switch and the
    start-up check.
    """

    def __init__(self, lean_poll: bool = True, direct: bool = True) -> None:
        super().__init__()
        self.lean_poll = lean_poll
        self.direct_on = lean_poll and direct
        # eio sid -> direct writer, for websocket sockets on uvicorn's sansio protocol.
        self.direct: dict[str, DirectFrames] = {}
        self.batches: dict[str, _Batch] = {}  # eio sid -> its batch (kept while it is open)
        self.flusher = Flusher()
        self.fanouts: dict[str, FanOut] = {}  # namespace -> its log of namespace-wide emits
        self._late: set[asyncio.Task[None]] = set()

    def set_server(self, server: Any) -> None:
        super().set_server(server)
        eio = server.eio
        # The driver table is a module-level dict shared by every server: copy, then swap.
        if self.direct_on and eio._async.get("websocket") is eio_asgi.WebSocket:
            tracked = functools.partial(_TrackedWebSocket, direct=self.direct, batches=self.batches)
            eio._async = {**eio._async, "websocket": tracked}

    async def pre_connect(self, eio_sid: str, namespace: str) -> Any:
        if self.lean_poll:
            socket = self.server.eio.sockets.get(eio_sid)
            if (
                socket is not None
                and isinstance(socket.queue, asyncio.Queue)
                and not isinstance(socket.poll, LeanPoll)
            ):
                socket.poll = LeanPoll(socket)
        sid = await super().pre_connect(eio_sid, namespace)
        if sid is not None:  # in the namespace's room now: namespace-wide emits reach it
            fanout = self.fanouts.get(namespace)
            if fanout is None:
                fanout = self.fanouts[namespace] = FanOut({})
            fanout.members[eio_sid] = _Member(self, eio_sid, fanout)
        return sid

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        fanout = self.fanouts.get(namespace)
        if fanout is not None:
            fanout.members.pop(self.eio_sid_from_sid(sid, namespace), None)
        super().basic_disconnect(sid, namespace, **kwargs)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            # Each recipient gets a distinct ack id, so nothing can be shared. What waits
            # for those sockets goes out first: the parent class queues at once.
            fanout = self.fanouts.get(namespace)
            if fanout is not None:
                for _, eio_sid in self.get_participants(namespace, to or room):
                    member = fanout.members.get(eio_sid)
                    if member is not None:
                        member.flush_fanout()
            kwargs.update(room=room, skip_sid=skip_sid, callback=callback, to=to)
            await super().emit(event, data, namespace, **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        packets = self._encode_event(event, data, namespace)
        # One text packet (no binary attachments) can skip the queue of a parked writer.
        text = packets[0].encode() if len(packets) == 1 and not packets[0].binary else None
        key = event if event in QUEUE_EVENTS else None
        fanout = self.fanouts.get(namespace)
        if room is None and skip_sid is None and text is not None and fanout is not None:
            fanout.append((text, packets[0], key))  # each socket takes it in the pass
            return
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        recipients = (
            eio_sid for sid, eio_sid in self.get_participants(namespace, room) if sid not in skip
        )
        members = fanout.members if fanout is not None else {}
        late = self._enqueue(recipients, packets, text, key, members)
        # Sockets whose ping has timed out take the regular send path, which closes them
        # exactly as python-engineio would (and sends nothing).
        for socket in late:
            for pkt in packets:
                await socket.send(pkt)

    def _encode_event(self, event: str, data: Any, namespace: str) -> list[eio_packet.Packet]:
        """The Engine.IO packets of one event: built and encoded once for all recipients."""
        if isinstance(data, tuple):
            args = list(data)  # a tuple is several arguments, anything else is one
        elif data is not None:
            args = [data]
        else:
            args = []
        pkt = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args])
        encoded = pkt.encode()
        if not isinstance(encoded, list):
            encoded = [encoded]
        packets = [eio_packet.Packet(eio_packet.MESSAGE, part) for part in encoded]
        for part in packets:
            if not part.binary:
                part.encode()  # fill the encode cache once; text encodes alike everywhere
        return packets

    def _enqueue(
        self,
        eio_sids: Iterable[str],
        packets: list[eio_packet.Packet],
        text: str | None,
        key: str | None,
        members: dict[str, _Member] | None = None,
        *,
        bulk: bool = True,
    ) -> list[Any]:
        """Hand ``packets`` to every live socket; return the sockets that need a slow path.

        ``members``: each recipient first takes what the namespace's log holds for it.
        ``bulk``: register a batch with the flusher (the fan-out pass writes its own)."""
        eio = self.server.eio
        sockets = eio.sockets
        direct = self.direct if text is not None else {}
        batches = self.batches
        deadline = time.time() - eio.ping_timeout
        late = []
        count = 0
        for eio_sid in eio_sids:
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue  # gone between the room lookup and now: nothing to deliver
            if members:
                member = members.get(eio_sid)
                if member is not None:
                    member.take_broadcasts(bulk=True)
            last_ping = socket.last_ping
            if last_ping and last_ping < deadline:
                late.append(socket)
                continue
            count += 1
            batch = batches.get(eio_sid)
            if batch is not None and batch.texts:  # waiting to be written: join it
                if text is not None:
                    batch.add_packet(text, packets[0], key)
                    continue
                batch.flush()  # a binary packet: what waits goes first
            # Only while the writer waits on an empty queue has everything queued before
            # reached the transport: writing (a moment later, in one batch) keeps the order.
            elif text is not None and eio_sid in direct and _writer_parked(socket):
                if batch is None:
                    batch = batches[eio_sid] = _Batch(self, eio_sid)
                batch.add_packet(text, packets[0], key)
                if bulk:
                    self.flusher.bulk(batch)
                continue
            put = socket.queue.put_nowait
            for pkt in packets:
                put(_own_copy(pkt) if pkt.binary else pkt)
        if eio.logger.isEnabledFor(logging.INFO):
            eio.logger.info("Broadcast %d packet(s) to %d socket(s)", len(packets), count)
        return late

    def _send_late(self, socket: Any, packets: list[eio_packet.Packet]) -> None:
        """The regular send path for a socket whose ping timed out: it closes the socket
        exactly as python-engineio would (and sends nothing)."""

        async def send() -> None:
            for pkt in packets:
                await socket.send(pkt)

        task = asyncio.create_task(send())
        self._late.add(task)
        task.add_done_callback(self._late.discard)


class _Member:
    """A socket's place in its namespace's log of namespace-wide emits."""

    __slots__ = ("cursor", "fanout", "id", "manager")

    def __init__(self, manager: BroadcastManager, eio_sid: str, fanout: FanOut) -> None:
        self.manager, self.id, self.fanout = manager, eio_sid, fanout
        self.cursor = fanout.end  # emits from here on are this socket's

    def take_broadcasts(self, *, bulk: bool) -> None:
        """Hand the socket, in order, the emits it has not taken yet."""
        if self.cursor == self.fanout.end:
            return
        manager = self.manager
        for text, packet, key in self.fanout.take(self):
            for socket in manager._enqueue((self.id,), [packet], text, key, bulk=bulk):
                manager._send_late(socket, [packet])

    def flush_fanout(self) -> None:
        self.take_broadcasts(bulk=False)
        batch = self.manager.batches.get(self.id)
        if batch is not None:
            batch.flush()


class _Batch(Batch):
    """A parked websocket's text packets waiting to be written, with their packets.
    Written in one transport write if the writer is still parked at the flush, else
    queued for that writer, in order. One per socket, kept while it is open."""

    __slots__ = ("manager", "packets", "sid")

    def __init__(self, manager: BroadcastManager, sid: str) -> None:
        super().__init__()
        self.manager, self.sid = manager, sid
        self.packets: list[eio_packet.Packet] = []

    def add_packet(self, text: str, pkt: eio_packet.Packet, key: str | None) -> None:
        self.add(text, key)
        self.packets.append(pkt)

    def flush(self) -> None:
        texts, packets = self.texts, self.packets
        if not texts:
            return  # written already
        try:
            socket = self.manager.server.eio.sockets.get(self.sid)
            if socket is None or socket.closed:
                return
            writer = self.manager.direct.get(self.sid)
            if writer is not None and _writer_parked(socket) and writer.write_texts(self.live()):
                return
            for text, pkt in zip(texts, packets, strict=True):
                if text is not None:
                    socket.queue.put_nowait(pkt)
        finally:
            self.clear()
            packets.clear()


def _writer_parked(socket: Any) -> bool:
    """The socket's websocket writer waits on an empty queue. Before the upgrade is done
    the parked poll is a long-poll GET and the websocket is the client's probe, which
    must carry nothing but the probe exchange."""
    poll = socket.poll
    return (
        socket.upgraded
        and type(poll) is LeanPoll
        and poll.parked_task is not None
        and socket.queue.empty()
    )


class _TrackedWebSocket(eio_asgi.WebSocket):
    """python-engineio's ASGI websocket wrapper, recording a direct writer for the
    socket it serves (``handler`` is that socket's bound ``_websocket_handler``) from
    the moment the handshake is accepted until the handler returns."""

    def __init__(
        self,
        handler: Any,
        server: Any,
        *,
        direct: dict[str, DirectFrames],
        batches: dict[str, _Batch],
    ) -> None:
        socket = handler.__self__

        async def tracked(ws: eio_asgi.WebSocket) -> None:
            writer = direct_writer(ws.asgi_send)
            if writer is not None:
                direct[socket.sid] = writer
            try:
                await handler(ws)
            finally:
                direct.pop(socket.sid, None)
                batches.pop(socket.sid, None)

        super().__init__(tracked, server)


def _own_copy(pkt: eio_packet.Packet) -> eio_packet.Packet:
    """A binary packet per socket: Engine.IO caches the first encoding of a packet, which
    is raw bytes on websocket but base64 text on polling, so one shared binary packet
    cannot serve both transports (the parent class shares it and breaks when mixed)."""
    return eio_packet.Packet(eio_packet.MESSAGE, pkt.data)


class LeanPoll:
    """``engineio.AsyncSocket.poll`` without a Task or a timer per call.

    A socket's writer (websocket) and each long-poll GET call ``poll`` once per wake-up.
    python-engineio 4.15 waits with ``asyncio.wait_for(queue.get(), timeout)``, which on
    Python 3.11 wraps the ``get`` in a new Task and schedules and cancels a timer for
    every packet a writer sends; the cancelled timers linger in the loop's heap and
    their garbage drives full collections over every socket's objects (the p99 tail).
    Profiled at 1,000 clients, that was most of the remaining CPU per delivery.

    Here a queued packet is taken at once, and a wait parks on ``queue.get()`` with one
    long-lived watchdog timer per socket that is re-armed only when it fires. Results,
    the timeout (ping_interval + ping_timeout, counted from the start of the wait) and
    its ``QueueEmpty``, the ``None`` end marker and ``task_done`` are as upstream.
    """

    __slots__ = ("parked_at", "parked_task", "socket", "timer")

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.parked_at: float | None = None
        self.parked_task: asyncio.Task[Any] | None = None
        self.timer: asyncio.TimerHandle | None = None

    async def __call__(self) -> list[eio_packet.Packet]:
        queue = self.socket.queue
        first = queue.get_nowait() if not queue.empty() else await self._wait(queue)
        queue.task_done()
        if first is None:
            return []
        packets = [first]
        while not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is None:
                queue.put_nowait(None)  # leave the end marker for the next call, as upstream
                break
            packets.append(pkt)
        return packets

    def _timeout(self) -> float:
        server = self.socket.server
        return server.ping_interval + server.ping_timeout

    async def _wait(self, queue: asyncio.Queue[Any]) -> Any:
        if self.parked_task is not None:  # a second concurrent poll: upstream's way
            try:
                async with asyncio.timeout(self._timeout()):
                    return await queue.get()
            except (TimeoutError, asyncio.CancelledError):
                raise eio_exceptions.QueueEmpty() from None
        loop = asyncio.get_running_loop()
        self.parked_at = loop.time()
        self.parked_task = asyncio.current_task()
        if self.timer is None:
            self.timer = loop.call_at(self.parked_at + self._timeout(), self._expire, loop)
        try:
            return await queue.get()
        except asyncio.CancelledError:  # the watchdog's or anyone's: upstream's QueueEmpty
            raise eio_exceptions.QueueEmpty() from None
        finally:
            self.parked_at = self.parked_task = None

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        if self.parked_at is None or self.parked_task is None:
            return  # not waiting: the next wait arms a new watchdog
        deadline = self.parked_at + self._timeout()
        if loop.time() >= deadline:
            self.parked_task.cancel()
        else:
            self.timer = loop.call_at(deadline, self._expire, loop)


class RedisBroadcastManager(socketio.AsyncRedisManager, BroadcastManager):
    """python-socketio's Redis manager (``GENIE_REDIS_URL``) with the local fan-out of
    :class:`BroadcastManager`.

    ``AsyncPubSubManager`` delivers locally through ``super().emit``, both this node's
    own emits and every message that arrives from another node; this class's method
    order (``AsyncRedisManager`` -> ``AsyncPubSubManager`` -> ``BroadcastManager``) makes
    that call the encode-once, Task-free emit. One Redis message per emit, whatever the
    number of clients on any node.

    Two differences from the stock manager: the listener re-subscribes every ``RETRY``
    seconds while Redis is down (python-socketio's doubles its wait from 1 s to 60 s, so
    a node would stay deaf up to a minute after Redis is back), and messages a peer of
    another python-socketio generation sends (not JSON: older versions pickle; ``data``
    not a list: older framing) are reported once, loudly, instead of dropped in silence.
    """

    RETRY = 0.1

    def __init__(self, url: str, channel: str, *, direct: bool = True) -> None:
        options = {"socket_connect_timeout": 1.0, "health_check_interval": 5}
        super().__init__(url, channel=channel, redis_options=options)
        self.direct_on = self.lean_poll and direct
        self._reported: set[str] = set()

    async def _redis_listen_with_retries(self) -> Any:
        down = False
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                if down:
                    log.warning("Socket.IO channel %r: Redis is back", self.channel)
                    down = False
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:  # a lost connection; cancellation is not an Exception
                stop_if_cancelled()  # redis-py may swallow it (see there)
                if not down:
                    log.error("Socket.IO channel %r: Redis lost (%s); retrying every %g s",
                              self.channel, exc, self.RETRY)  # fmt: skip
                down = True
                await asyncio.sleep(self.RETRY)

    async def _listen(self) -> Any:
        async for data in super()._listen():
            self._check_peer(data)
            yield data

    def _check_peer(self, data: Any) -> None:
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            self._report(
                "not-json",
                "sends messages that are not JSON (python-socketio 5.13 and older pickle "
                "them); they are dropped",
            )
            return
        emit = isinstance(message, dict) and message.get("method") == "emit"
        if emit and not isinstance(message.get("data"), list):
            self._report(
                "framing",
                "frames emits the older way (data not in a list); it will hand its pages "
                "this server's emits wrapped in a list",
            )

    def _report(self, kind: str, what: str) -> None:
        if kind not in self._reported:
            self._reported.add(kind)
            log.warning("a peer on Socket.IO channel %r %s: run one python-socketio "
                        "generation per channel", self.channel, what)  # fmt: skip
