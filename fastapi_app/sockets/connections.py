"""ConnectionManager: every native ``/ws`` client, live or waiting to resume.

A :class:`Client` is the logical session (id, sequence numbers, recent frames, jobs);
an :class:`~fastapi_app.sockets.outbox.Outbox` is the socket it is on right now, if any. A
broadcast is encoded once and logged; each client takes it a moment later, or sooner if a
frame of its own goes first (``fastapi_app.sockets.fanout``), and splices in its ``seq``.

Lifecycle (full stage): a client whose socket closes is *detached* and kept for
``ws_resume_window`` seconds with its recent frames. If it sends ``resume`` on a new
socket in time it gets the frames it missed and its jobs keep reporting to it; if not,
it is *gone*: ``on_gone`` cancels its queued jobs and its audio streams. With a window
of 0 (or in the MVP) a closed client is gone at once. Sockets closed by a shutdown
(1012) never make a client gone: its jobs stay in the store for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket

from fastapi_app.sockets.client import Client
from fastapi_app.sockets.direct_frames import DirectFrames
from fastapi_app.sockets.fanout import Entry, FanOut
from fastapi_app.sockets.flusher import Flusher
from fastapi_app.sockets.outbox import Outbox, SendStats
from wire import frames

log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT = 1011
SERVICE_RESTART = 1012

GoneCallback = Callable[["Client"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    queue_size: int = 256
    history: int = 0  # 0: no sequence numbers, no resume (MVP)
    resume_window: float = 0.0
    heartbeat_interval: float | None = None  # None: no heartbeat (MVP)
    heartbeat_timeout: float = 60.0
    close_timeout: float = 5.0
    # A fleet numbers per-client frames in Redis (resume works on any process); local
    # broadcasts then carry the latest seq without taking a number.
    fleet: bool = False


class ConnectionManager:
    def __init__(self, options: ManagerOptions) -> None:
        self.options = options
        self.stats = SendStats()
        self.flusher = Flusher()
        self.clients: dict[str, Client] = {}  # live and detached
        self.live: dict[str, Client] = {}
        self.fanout = FanOut(self.clients)
        self.heartbeat_closed = 0
        self.draining = False
        self._on_gone: GoneCallback | None = None
        self._last_ping = time.monotonic()

    def set_on_gone(self, callback: GoneCallback) -> None:
        """Called (awaited) once for each client that left for good."""
        self._on_gone = callback

    # --- sockets ----------------------------------------------------------------------

    def open(
        self, ws: WebSocket, subject: str | None = None, direct: DirectFrames | None = None
    ) -> Client:
        """Register an accepted socket as a new client and greet it."""
        client = self._new_client(str(uuid.uuid4()), subject)
        client.outbox = Outbox(ws.send, self.options.queue_size, self.stats, self.flusher, direct)
        self.clients[client.id] = self.live[client.id] = client
        client.control(frames.connection_established(client.id))
        return client

    async def release(self, client: Client, outbox: Outbox, code: int) -> None:
        """The socket behind ``outbox`` has closed with ``code``."""
        await outbox.stop()
        if client.outbox is not outbox:
            return  # the client resumed on another socket meanwhile
        client.outbox = None
        self.live.pop(client.id, None)
        # A shutdown (ours, or the 1012 uvicorn sends) is no client leaving: its jobs stay
        # in the store for the next start.
        keep_jobs = self.draining or code == SERVICE_RESTART
        if client.history is not None and (keep_jobs or self.options.resume_window > 0):
            client.detached_at = time.monotonic()
        else:
            await self._forget(client, gone=not keep_jobs)

    def resume(self, temp: Client, old_id: str, last_seq: int) -> Client:
        """Move ``temp``'s socket to the session ``old_id`` and replay what it missed."""
        old = self.clients.get(old_id)
        check_resume(temp)
        if old is None or old is temp:
            raise frames.FrameError("resume_failed", f"no session {old_id!r} to resume")
        if old.subject != temp.subject:
            raise frames.FrameError("resume_forbidden", "that session belongs to someone else")
        self._move_socket(temp, old)
        replayed, complete = self._replay(old, last_seq)
        old.control(frames.resumed(old.id, replayed, complete))
        return old

    def adopt(self, temp: Client, old_id: str, last_seq: int) -> Client:
        """Fleet resume: ``temp``'s socket becomes session ``old_id``, whichever process
        held it before (the fleet checked it and replays its frames next)."""
        old = self.clients.get(old_id)
        if old is None or old is temp:
            old = self._new_client(old_id, temp.subject)
            self.clients[old_id] = old
        self._move_socket(temp, old)
        old.seq = last_seq  # the replay brings it up to date; older numbers are skipped
        return old

    def _new_client(self, client_id: str, subject: str | None) -> Client:
        opts = self.options
        return Client(client_id, subject, opts.history, opts.resume_window, self.fanout)

    def _move_socket(self, temp: Client, old: Client) -> None:
        # Both take what was broadcast so far first: the temporary socket's batch goes
        # out before the resume, and the session's history is complete for the replay.
        temp.take_broadcasts()
        old.take_broadcasts()
        if old.outbox is not None:
            old.outbox.close(1000, "resumed on another connection")
        outbox, temp.outbox = temp.outbox, None
        del self.clients[temp.id], self.live[temp.id]
        old.outbox, old.detached_at = outbox, None
        old.last_seen = time.monotonic()
        self.live[old.id] = old

    def _replay(self, client: Client, last_seq: int) -> tuple[int, bool]:
        assert client.history is not None and client.outbox is not None
        missed = client.history.since(last_seq, client.seq, time.monotonic())
        complete = last_seq <= client.seq and len(missed) == client.seq - last_seq
        # Replayed frames do not count against the live queue limit (the history is
        # bounded already), so a long replay does not read as a slow client.
        client.outbox.capacity += len(missed)
        for seq, body in missed:
            client.outbox.push(frames.with_seq(body, seq))
        return len(missed), complete

    # --- sending ----------------------------------------------------------------------

    def broadcast(self, payload: dict[str, Any]) -> None:
        """Encode once and log it: every client (detached ones keep it for resume) takes
        it lazily, so this costs the same for one client or ten thousand. A queue count
        replaces an older one still waiting in a batch."""
        body = frames.encode(payload)
        name = payload.get("type")
        key = name if name in frames.QUEUE_EVENTS else None
        # A fleet numbers only per-client frames (in Redis): broadcasts then carry the
        # latest seq without taking a number.
        numbered = not self.options.fleet
        self.fanout.append(Entry(body, body[1:], key, time.monotonic(), numbered))

    def send(self, client_id: str, payload: dict[str, Any], seq: int | None = None) -> bool:
        """A per-client data frame; ``seq`` when the fleet numbered it."""
        client = self.clients.get(client_id)
        if client is None:
            self.stats.dropped += 1
            return False
        if seq is None:
            client.deliver(frames.encode(payload), time.monotonic())
        else:
            client.deliver_numbered(frames.encode(payload), seq)
        return True

    # --- upkeep -----------------------------------------------------------------------

    def tick_interval(self) -> float | None:
        """How often :meth:`maintain` should run; None when nothing needs it."""
        opts = self.options
        candidates = [1.0]
        if opts.heartbeat_interval is not None:
            candidates += [opts.heartbeat_interval, opts.heartbeat_timeout / 2]
        if opts.history and opts.resume_window > 0:
            candidates.append(opts.resume_window / 2)
        elif opts.heartbeat_interval is None:
            return None
        return max(min(candidates), 0.01)

    async def maintain(self) -> None:
        """One upkeep pass: heartbeat pings, silent clients, expired detached clients."""
        now = time.monotonic()
        interval = self.options.heartbeat_interval
        if interval is not None:
            deadline = now - self.options.heartbeat_timeout
            for client in list(self.live.values()):
                if client.last_seen < deadline and client.outbox is not None:
                    self.heartbeat_closed += 1
                    client.take_broadcasts()
                    client.outbox.close(HEARTBEAT_TIMEOUT, "heartbeat timeout")
            if now - self._last_ping >= interval:
                self._last_ping = now
                ping = frames.encode(frames.ping())
                self.fanout.append(Entry(ping, ping[1:], None, now, numbered=False))
        if not self.draining:
            expiry = now - self.options.resume_window
            for client in list(self.clients.values()):
                if client.detached_at is not None and client.detached_at <= expiry:
                    await self._forget(client)

    async def run_upkeep(self) -> None:
        interval = self.tick_interval()
        if interval is None:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await self.maintain()
            except Exception:
                log.exception("connection upkeep failed; retrying next tick")

    async def drain(self, code: int = SERVICE_RESTART, reason: str = "server restarting") -> None:
        """Shutdown: close every socket (their clients are kept, nothing is cancelled)."""
        self.draining = True
        writers = []
        for client in list(self.live.values()):
            if client.outbox is not None:
                client.take_broadcasts()  # written before the close, as they would have been
                client.outbox.close(code, reason)
                writers.append(client.outbox.writer)
        pending = [w for w in writers if w is not None]
        if pending:
            await asyncio.wait(pending, timeout=self.options.close_timeout)

    async def _forget(self, client: Client, gone: bool = True) -> None:
        self.clients.pop(client.id, None)
        self.live.pop(client.id, None)
        if gone and self._on_gone is not None:
            try:
                await self._on_gone(client)
            except Exception:
                log.exception("cleaning up after client %s failed", client.id)

    def __len__(self) -> int:
        return len(self.live)


def check_resume(temp: Client) -> None:
    """Whether the socket behind ``temp`` may still resume another session."""
    if temp.history is None:
        raise frames.FrameError("resume_unsupported", "this server does not keep frames")
    if temp.active_jobs:
        raise frames.FrameError("resume_too_late", "send resume before any query")
