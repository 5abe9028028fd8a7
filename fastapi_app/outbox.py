"""One open ``/ws`` socket's sending side: a bounded outbox and its writer.

Frames leave in order through one path per socket, and only a writer task ever waits
on a socket, so a slow peer stalls only its own writer: everyone else's frames go out
at once. When an outbox is full the peer is not keeping up; it is closed with 1013 and
may reconnect and ``resume``.

Fast path. Most of the time a socket takes a frame without waiting (its transport
buffer has room), so an outbox with nothing in flight sends on the spot: a broadcast to
N sockets costs N sends, not N task switches, and an idle socket holds no task at all.
Cheaper still, when the socket offers a ``direct`` writer (uvicorn's sansio protocol,
see ``fastapi_app.direct_frames``) the frame goes straight to its transport. Otherwise
the ASGI send coroutine is stepped once by hand; if it does have to wait (the peer's
buffer is full) it is handed, still suspended, to a writer task started for the
occasion, which finishes it as a Task would, then sends what queued up behind it, then
ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.websockets import WebSocketDisconnect

from fastapi_app.direct_frames import DirectWrite

log = logging.getLogger(__name__)

SLOW_CONSUMER = 1013  # "try again later": reconnect, then resume
SLOW_REASON = "send queue full: client too slow"
SendFn = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
_GONE = (WebSocketDisconnect, OSError, RuntimeError)  # what a send to a closed socket raises


class SendStats:
    """Counters shared by every outbox (plain ints: this is the hot path)."""

    __slots__ = ("dropped", "sent", "slow_closed")

    def __init__(self) -> None:
        self.sent = 0
        self.dropped = 0
        self.slow_closed = 0


class Outbox:
    __slots__ = (
        "_direct",
        "_frames",
        "_pending",
        "_send",
        "capacity",
        "close_request",
        "gone",
        "stats",
        "writer",
    )

    def __init__(
        self, send: SendFn, capacity: int, stats: SendStats, direct: DirectWrite | None = None
    ) -> None:
        self._send = send  # the socket's ASGI-style send
        self._direct = direct
        self.capacity = capacity
        self.stats = stats
        self._frames: deque[str] = deque()
        # A send that had to wait, with what it waits on; the writer finishes it.
        self._pending: tuple[Coroutine[Any, Any, None], Any] | None = None
        self.close_request: tuple[int, str] | None = None
        self.gone = False
        self.writer: asyncio.Task[None] | None = None  # only while there is a backlog

    def push(self, text: str) -> None:
        """Send one encoded frame now if the socket takes it, else queue it (bounded)."""
        if self.close_request is not None or self.gone:
            self.stats.dropped += 1
            return
        if self.writer is None:
            self._send_now(text)
            return
        if len(self._frames) >= self.capacity:
            self.stats.slow_closed += 1
            self.stats.dropped += 1
            self.close(SLOW_CONSUMER, SLOW_REASON)
            return
        self._frames.append(text)  # the running writer sends it after the backlog

    def close(self, code: int, reason: str) -> None:
        """Drop what is queued; the close frame goes out after any send in flight."""
        if self.close_request is not None or self.gone:
            return
        self.close_request = (code, reason)
        self.stats.dropped += len(self._frames)
        self._frames.clear()
        self._start_writer()

    async def stop(self) -> None:
        """The socket is gone: end the writer (it may be parked on a stalled send)."""
        self.gone = True
        writer = self.writer
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        if self._pending is not None:
            self._pending[0].close()
            self._pending = None
        self.stats.dropped += len(self._frames)
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def direct(self) -> bool:
        """Whether frames may skip ASGI (see ``fastapi_app.direct_frames``)."""
        return self._direct is not None

    # --- internals ----------------------------------------------------------------------

    def _send_now(self, text: str) -> None:
        direct = self._direct
        if direct is not None and direct(text):
            self.stats.sent += 1
            return
        coro = self._send({"type": "websocket.send", "text": text})
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            self.stats.sent += 1
            return
        except _GONE:
            self.gone = True
            self.stats.dropped += 1
            return
        self._pending = (coro, waiting_on)
        self._start_writer()

    def _start_writer(self) -> None:
        if self.writer is None:
            self.writer = asyncio.create_task(self._run())

    async def _run(self) -> None:
        frames, send = self._frames, self._send
        try:
            if self._pending is not None:
                await self._finish_pending()
            while frames:
                await send({"type": "websocket.send", "text": frames.popleft()})
                self.stats.sent += 1
            if self.close_request is not None:
                code, reason = self.close_request
                await send({"type": "websocket.close", "code": code, "reason": reason})
                self.gone = True
        except _GONE as exc:
            # The peer left (or the socket was closed elsewhere): nothing more to send.
            self.gone = True
            log.debug("writer stopped: %r", exc)
        finally:
            # Backlog cleared (no await since the last check): later frames go direct.
            self.writer = None

    async def _finish_pending(self) -> None:
        """Drive the send that :meth:`_send_now` started and that had to wait."""
        assert self._pending is not None
        coro, waiting_on = self._pending
        while True:
            await _until_done(waiting_on)
            try:
                waiting_on = coro.send(None)
            except StopIteration:
                break
            self._pending = (coro, waiting_on)
        self._pending = None
        self.stats.sent += 1


async def _until_done(waiting_on: Any) -> None:
    """Wait, as a Task would, for what a hand-stepped coroutine yielded: a future (resume
    it once the future is done; it reads the result itself) or None (a bare yield).

    The future is watched through a callback, never awaited here: it is already marked
    as awaited by the coroutine that yielded it, and awaiting it twice is an error.
    """
    if waiting_on is None:
        await asyncio.sleep(0)
        return
    done = asyncio.get_running_loop().create_future()

    def wake(_: Any) -> None:
        if not done.done():
            done.set_result(None)

    waiting_on.add_done_callback(wake)
    await done
