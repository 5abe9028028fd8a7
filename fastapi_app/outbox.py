"""One open ``/ws`` socket's sending side: a bounded outbox drained by one writer task.

The writer is the only code that sends on its socket (frames and the close frame), so
sends never interleave, and a slow peer stalls only its own writer: everyone else's
frames are appended to their own outboxes and go out at once. When an outbox is full
the peer is not keeping up; it is closed with 1013 and may reconnect and ``resume``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger(__name__)

SLOW_CONSUMER = 1013  # "try again later": reconnect, then resume
SLOW_REASON = "send queue full: client too slow"


class SendStats:
    """Counters shared by every outbox (plain ints: this is the hot path)."""

    __slots__ = ("dropped", "sent", "slow_closed")

    def __init__(self) -> None:
        self.sent = 0
        self.dropped = 0
        self.slow_closed = 0


class Outbox:
    __slots__ = ("_frames", "_waiter", "capacity", "close_request", "stats", "writer", "ws")

    def __init__(self, ws: WebSocket, capacity: int, stats: SendStats) -> None:
        self.ws = ws
        self.capacity = capacity
        self.stats = stats
        self._frames: deque[str] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.close_request: tuple[int, str] | None = None
        self.writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.writer = asyncio.create_task(self._run())

    def push(self, text: str) -> None:
        """Queue one encoded frame; a full outbox closes the socket (slow consumer)."""
        if self.close_request is not None:
            self.stats.dropped += 1
            return
        if len(self._frames) >= self.capacity:
            self.stats.slow_closed += 1
            self.close(SLOW_CONSUMER, SLOW_REASON)
            self.stats.dropped += 1
            return
        self._frames.append(text)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, code: int, reason: str) -> None:
        """Drop what is queued and have the writer send the close frame next."""
        if self.close_request is not None:
            return
        self.close_request = (code, reason)
        self.stats.dropped += len(self._frames)
        self._frames.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def stop(self) -> None:
        """The socket is gone: end the writer (it may be parked on a stalled send)."""
        writer = self.writer
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        self.stats.dropped += len(self._frames)
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

    async def _run(self) -> None:
        frames, ws, stats = self._frames, self.ws, self.stats
        loop = asyncio.get_running_loop()
        try:
            while True:
                while frames:
                    await ws.send_text(frames.popleft())
                    stats.sent += 1
                if self.close_request is not None:
                    await ws.close(*self.close_request)
                    return
                self._waiter = loop.create_future()
                await self._waiter
                self._waiter = None
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:
            # The peer left (or the socket was closed elsewhere): nothing more to send.
            log.debug("writer stopped: %r", exc)
